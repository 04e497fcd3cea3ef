"""Stage-2 multi-view denoiser (Sec. 2.2): temporal blocks per view + cross-view attention per frame."""
import chex
import jax.numpy as jnp
from flax import nnx

from anylift_jax.models.layers import Block, Mlp, NoiseEmbed, prepend_noise_token


class MultiViewDenoiser(nnx.Module):
    """Predicts the clean decomposed keypoints of V views from noisy ones, given the input view.

    Conditioning: every view's tokens carry its own camera trajectory features C_v (12), the
    *input view's* clean keypoints masked by their visibility (K·2) with that visibility (K), and
    a flag marking view 0; the sampler additionally inpaints view 0 (`diffusion.samplers`). A
    learned view-index embedding is added to all tokens of a view. Each layer applies a temporal
    block within each view (padding-masked, noise token prepended per view) and then a cross-view
    block over the V tokens of each time step (MVLift's layout plus AnyLift's camera condition).
    """

    def __init__(self, num_keypoints, num_views, d_model, num_layers, num_heads, head_dim, ffn_dim,
                 dropout, *, dtype=jnp.float32, rngs):
        self.num_keypoints = num_keypoints
        self.num_views = num_views
        self.dtype = dtype
        k = num_keypoints
        self.encoder = Mlp(k * 2 + 12 + k * 2 + k + 1, d_model, d_model, dtype=dtype, rngs=rngs)
        self.noise_embed = NoiseEmbed(d_model, dtype=dtype, rngs=rngs)
        self.view_embed = nnx.Embed(num_views, d_model, dtype=dtype, rngs=rngs)

        def block():
            return Block(d_model, num_heads, head_dim, ffn_dim, dropout, dtype=dtype, rngs=rngs)

        self.temporal = nnx.List([block() for _ in range(num_layers)])
        self.cross = nnx.List([block() for _ in range(num_layers)])
        self.head = nnx.Linear(d_model, k * 2, dtype=dtype, rngs=rngs)

    def __call__(self, x_n, n, cam, cond, cond_mask, mask):
        """Denoise all views.

        x_n (B, V, T, K, 2), n (B,) int, cam (B, V, T, 12), cond (B, T, K, 2) input-view keypoints,
        cond_mask (B, T, K) their visibility, mask (B, T) -> (B, V, T, K, 2) float32.
        """
        b, v, t, k, _ = x_n.shape
        chex.assert_shape(x_n, (b, self.num_views, t, self.num_keypoints, 2))
        chex.assert_shape([n, cam, cond, cond_mask, mask], [(b,), (b, v, t, 12), (b, t, k, 2), (b, t, k), (b, t)])
        cond_feats = jnp.concatenate([(cond * cond_mask[..., None]).reshape(b, t, k * 2), cond_mask], -1)
        flag = jnp.zeros((b, v, t, 1), x_n.dtype).at[:, 0].set(1.0)
        feats = jnp.concatenate([
            x_n.reshape(b, v, t, k * 2), cam, jnp.broadcast_to(cond_feats[:, None], (b, v, t, k * 3)), flag], -1)
        view = self.view_embed(jnp.arange(v))  # (V, d)
        tokens = (self.encoder(feats.astype(self.dtype)) + view[:, None]).reshape(b * v, t, -1)
        noise = (self.noise_embed(n)[:, None] + view).reshape(b * v, -1)
        x, attend = prepend_noise_token(tokens, noise, jnp.repeat(mask, v, axis=0))
        d = x.shape[-1]
        for temporal, cross in zip(self.temporal, self.cross):
            x = temporal(x, attend)  # (B·V, T+1, d)
            x = x.reshape(b, v, t + 1, d).swapaxes(1, 2).reshape(b * (t + 1), v, d)
            x = cross(x)
            x = x.reshape(b, t + 1, v, d).swapaxes(1, 2).reshape(b * v, t + 1, d)
        out = self.head(x[:, 1:]).astype(jnp.float32)
        return out.reshape(b, v, t, k, 2)
