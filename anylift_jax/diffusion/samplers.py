"""Reverse samplers: DDIM (Song et al. 2021) and ancestral DDPM, as one `jax.lax.scan`.

`denoise(x_n, n)` is any x0-predictor closed over its conditioning and padding mask
(`models.conditioned`); n is (B,) int. Inpainting: where `known_mask` is set, the predicted X̂_0
is replaced by `known` at every step, so the given input view is reproduced exactly and the other
views are sampled consistently with it.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from anylift_jax import models
from anylift_jax.diffusion import schedules


def ddim_sample(schedule, denoise, key, shape, *, num_steps, eta=0.0, clip=None, known=None,
                known_mask=None, project=None):
    """Sample X_0 of `shape` (B, …) in `num_steps` DDIM steps from X_N ~ N(0, I).

    x_{prev} = √ᾱ_prev X̂_0 + √(1 − ᾱ_prev − σ²) ε̂ + σ z with
    σ = η √((1 − ᾱ_prev)/(1 − ᾱ_n) · (1 − ᾱ_n/ᾱ_prev)); η = 1 with all N steps is the ancestral
    DDPM sampler with the posterior variance β̃_n. X̂_0 is clamped to [−clip, clip] when `clip`,
    then inpainted, then mapped by `project` (X̂_0 -> X̂_0 of the same shape) when given.
    """
    n_all = schedule.num_steps
    steps = jnp.round(jnp.linspace(n_all - 1, 0, num_steps)).astype(jnp.int32)
    prev = jnp.concatenate([steps[1:], jnp.array([-1], jnp.int32)])
    key, k0 = jax.random.split(key)
    x = jax.random.normal(k0, shape, jnp.float32)
    batch = shape[0]

    def step(x, inputs):
        n, n_prev, k = inputs
        n_vec = jnp.full((batch,), n, jnp.int32)
        x0 = denoise(x, n_vec)
        if clip is not None:
            x0 = jnp.clip(x0, -clip, clip)
        if known is not None:
            x0 = jnp.where(known_mask, known, x0)
        if project is not None:
            x0 = project(x0)
        eps = schedule.eps_from_x0(x, n_vec, x0)
        ab = schedule.alphas_cumprod[n]
        ab_prev = jnp.where(n_prev >= 0, schedule.alphas_cumprod[jnp.maximum(n_prev, 0)], 1.0)
        sigma = eta * jnp.sqrt((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev))
        z = jax.random.normal(k, shape, jnp.float32)
        x = jnp.sqrt(ab_prev) * x0 + jnp.sqrt(jnp.maximum(1.0 - ab_prev - sigma**2, 0.0)) * eps + sigma * z
        return x, None

    x, _ = jax.lax.scan(step, x, (steps, prev, jax.random.split(key, num_steps)))
    return x


def ddpm_sample(schedule, denoise, key, shape, *, clip=None, known=None, known_mask=None):
    """Ancestral DDPM over all N steps (MVLift's test-time sampler)."""
    return ddim_sample(schedule, denoise, key, shape, num_steps=schedule.num_steps, eta=1.0, clip=clip,
                       known=known, known_mask=known_mask)


def sample_model(config, graphdef, rest, params, batch, key, project=None):
    """DDIM samples X_0 of a trained denoiser (`nnx.split` into graphdef, params, rest) for a batch's
    conditioning (`config.diffusion.sample_steps`, `eta`), zero on padding.

    Multi view: view 0 is the given input view, inpainted where `joint_mask[:, 0]` is set.
    project: optional map of each step's X̂_0 (`ddim_sample`).
    Dropout is off (`model.eval()`).
    """
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    schedule = schedules.make_schedule(config.diffusion.schedule, config.diffusion.num_steps)
    x0 = batch["x0"]
    known = known_mask = None
    if config.model.name == "multi_view":
        known = jnp.broadcast_to(x0[:, :1], x0.shape)
        view0 = jnp.zeros(x0.shape[:-1], bool).at[:, 0].set(batch["joint_mask"][:, 0] > 0)
        known_mask = view0[..., None]
    out = ddim_sample(
        schedule, lambda x, n: models.predict(model, x, n, batch), key, x0.shape,
        num_steps=config.diffusion.sample_steps, eta=config.diffusion.eta, clip=config.diffusion.clip_x0,
        known=known, known_mask=known_mask, project=project)
    frame_axis = 2 if config.model.name == "multi_view" else 1
    return out * jnp.expand_dims(batch["mask"], [a for a in range(out.ndim) if a not in (0, frame_axis)])
