"""Blocks shared by the single-view and multi-view denoisers (Flax NNX).

Post-LN transformer blocks as in MVLift/"Attention is all you need": x = LN(x + Drop(Attn(x))),
x = LN(x + Drop(FFN(x))). Attention has `num_heads` heads of width `head_dim` each, so its inner
width `num_heads * head_dim` may differ from the model width (MVLift: 4 × 256 = 1024 inside a
512-wide model).
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx


def sinusoidal(positions, dim):
    """Transformer sinusoidal embedding: positions (...,) float -> (..., dim) float32."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = jnp.asarray(positions, jnp.float32)[..., None] * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], -1)


class Mlp(nnx.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, d_in, d_hidden, d_out, *, dtype, rngs):
        self.fc1 = nnx.Linear(d_in, d_hidden, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(d_hidden, d_out, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.gelu(self.fc1(x)))


class NoiseEmbed(nnx.Module):
    """Diffusion step n (B,) int -> (B, d): sinusoidal(64) -> Linear 256 -> GELU -> Linear d (MVLift)."""

    def __init__(self, d_model, *, dtype, rngs, sin_dim=64, hidden=256):
        self.sin_dim = sin_dim
        self.mlp = Mlp(sin_dim, hidden, d_model, dtype=dtype, rngs=rngs)

    def __call__(self, n):
        return self.mlp(sinusoidal(n, self.sin_dim))


class Block(nnx.Module):
    """Post-LN transformer encoder layer over the second-to-last axis of (N, L, d).

    `attend_mask` (N, L) bool marks the keys that may be attended to (padding mask).
    """

    def __init__(self, d_model, num_heads, head_dim, ffn_dim, dropout, *, dtype, rngs):
        self.attn = nnx.MultiHeadAttention(
            num_heads=num_heads, in_features=d_model, qkv_features=num_heads * head_dim,
            out_features=d_model, dtype=dtype, decode=False, rngs=rngs)
        self.ln1 = nnx.LayerNorm(d_model, dtype=dtype, rngs=rngs)
        self.ffn = Mlp(d_model, ffn_dim, d_model, dtype=dtype, rngs=rngs)
        self.ln2 = nnx.LayerNorm(d_model, dtype=dtype, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x, attend_mask=None):
        mask = None if attend_mask is None else attend_mask[:, None, None, :]
        x = self.ln1(x + self.drop(self.attn(x, mask=mask)))
        return self.ln2(x + self.drop(self.ffn(x)))


def prepend_noise_token(tokens, noise_emb, attend_mask):
    """Prepend the noise-level token (MVLift) and add sinusoidal positions.

    tokens (N, T, d), noise_emb (N, d), attend_mask (N, T) -> (N, T+1, d), (N, T+1) bool; the
    noise token sits at position 0 and is always attendable.
    """
    x = jnp.concatenate([noise_emb[:, None, :].astype(tokens.dtype), tokens], 1)
    x = x + sinusoidal(jnp.arange(x.shape[1]), x.shape[-1]).astype(x.dtype)
    attend = jnp.concatenate([jnp.ones_like(attend_mask[:, :1], bool), attend_mask > 0], 1)
    return x, attend
