"""Denoisers X_θ (Flax NNX); `build_model(config.model, rngs)` picks one by `config.name`."""
import jax.numpy as jnp

from anylift_jax.models.multi_view import MultiViewDenoiser
from anylift_jax.models.single_view import SingleViewDenoiser


def build_model(config, rngs):
    """Model from a `config.model` ConfigDict.

    Fields: name ('single_view' | 'multi_view'), num_keypoints (K, plus M object keypoints for HOI),
    num_views (multi-view), d_model, num_layers, num_heads, head_dim, ffn_dim, dropout,
    dtype ('float32' | 'bfloat16': compute dtype; parameters stay float32).
    """
    sizes = dict(num_keypoints=config.num_keypoints, d_model=config.d_model, num_layers=config.num_layers,
                 num_heads=config.num_heads, head_dim=config.head_dim, ffn_dim=config.ffn_dim,
                 dropout=config.dropout, dtype=jnp.dtype(config.dtype), rngs=rngs)
    if config.name == "single_view":
        return SingleViewDenoiser(**sizes)
    if config.name == "multi_view":
        return MultiViewDenoiser(num_views=config.num_views, **sizes)
    raise ValueError(f"config.model.name: unknown model {config.name!r} (single_view, multi_view)")


def predict(model, x_n, n, batch, cond_mask=None):
    """X̂_0 from either denoiser, its conditioning taken from a batch (docs/design.md "Batches").

    Single view: X_θ(X_n, n, C, L) with the padding mask. Multi view: the input view is
    `batch['x0'][:, 0]`, visible where `cond_mask` (B, T, K) (default `batch['joint_mask'][:, 0]`).
    """
    if isinstance(model, MultiViewDenoiser):
        cond_mask = batch["joint_mask"][:, 0] if cond_mask is None else cond_mask
        return model(x_n, n, batch["cam"], batch["x0"][:, 0], cond_mask, batch["mask"])
    return model(x_n, n, batch["cam"], batch["lines"], batch["mask"])
