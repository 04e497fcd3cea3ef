"""Stage-1 conditional single-view denoiser X_θ(X_n, n, C, L) (Sec. 2.1, Eq. 2)."""
import chex
import jax.numpy as jnp
from flax import nnx

from anylift_jax.models.layers import Block, Mlp, NoiseEmbed, prepend_noise_token


class SingleViewDenoiser(nnx.Module):
    """Predicts the clean decomposed keypoints X_0 from noisy ones.

    Per frame, the noisy keypoints (K·2), the camera trajectory features C_t (12) and the epipolar
    lines L_t (K·3) are concatenated and embedded by an MLP encoder (the paper's "MLP encoder");
    the noise level enters as a prepended token (sinusoidal -> MLP, as MVLift); a post-LN
    transformer encoder with a padding mask and a linear head give X_0. K may include object
    keypoints (HOI: K' = K + M).
    """

    def __init__(self, num_keypoints, d_model, num_layers, num_heads, head_dim, ffn_dim, dropout,
                 *, dtype=jnp.float32, rngs):
        self.num_keypoints = num_keypoints
        self.dtype = dtype
        k = num_keypoints
        self.encoder = Mlp(k * 2 + k * 3 + 12, d_model, d_model, dtype=dtype, rngs=rngs)
        self.noise_embed = NoiseEmbed(d_model, dtype=dtype, rngs=rngs)
        self.blocks = nnx.List([
            Block(d_model, num_heads, head_dim, ffn_dim, dropout, dtype=dtype, rngs=rngs)
            for _ in range(num_layers)])
        self.head = nnx.Linear(d_model, k * 2, dtype=dtype, rngs=rngs)

    def __call__(self, x_n, n, cam, lines, mask):
        """x_n (B, T, K, 2), n (B,) int, cam (B, T, 12), lines (B, T, K, 3), mask (B, T) -> (B, T, K, 2) f32."""
        b, t, k, _ = x_n.shape
        chex.assert_shape(x_n, (b, t, self.num_keypoints, 2))
        chex.assert_shape([cam, lines, mask, n], [(b, t, 12), (b, t, k, 3), (b, t), (b,)])
        feats = jnp.concatenate([x_n.reshape(b, t, k * 2), cam, lines.reshape(b, t, k * 3)], -1)
        x, attend = prepend_noise_token(self.encoder(feats.astype(self.dtype)), self.noise_embed(n), mask)
        for block in self.blocks:
            x = block(x, attend)
        return self.head(x[:, 1:]).astype(jnp.float32).reshape(b, t, k, 2)
