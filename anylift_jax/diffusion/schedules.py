"""Variance schedules and the forward process q(X_n | X_0) (Eq. 1), as a pytree of arrays.

Step indices n are 0-based: n = 0 is the least noisy step, n = N - 1 the noisiest
(the paper's n = 1 … N).
"""
import math

import jax.numpy as jnp
import numpy as np
from flax import struct


def cosine_betas(num_steps, s=0.008, max_beta=0.999):
    """Nichol & Dhariwal (2021): ᾱ(t) = cos²((t/N + s)/(1 + s) · π/2) / ᾱ(0); betas (N,) float64."""
    t = np.arange(num_steps + 1, dtype=np.float64) / num_steps
    f = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], max_beta)


def linear_betas(num_steps, start=1e-4, end=2e-2):
    """Ho et al. (2020) linear betas, rescaled to `num_steps` so that N = 1000 gives [1e-4, 0.02]."""
    scale = 1000.0 / num_steps
    return np.linspace(start * scale, end * scale, num_steps, dtype=np.float64)


@struct.dataclass
class Schedule:
    """betas (N,) and ᾱ_n = Π_{i≤n} (1 − β_i) (N,), float32."""

    betas: jnp.ndarray
    alphas_cumprod: jnp.ndarray

    @property
    def num_steps(self):
        return self.betas.shape[0]

    def _coef(self, values, n, like):
        """values[n] for n (B,) broadcast against `like` (B, …)."""
        v = values[n]
        return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))

    def q_sample(self, x0, n, eps):
        """X_n = √ᾱ_n X_0 + √(1 − ᾱ_n) ε, the closed form of Eq. 1 iterated. x0, eps (B, …), n (B,)."""
        ab = self._coef(self.alphas_cumprod, n, x0)
        return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * eps

    def eps_from_x0(self, x_n, n, x0_hat):
        """ε̂ = (X_n − √ᾱ_n X̂_0) / √(1 − ᾱ_n): the noise an x0-predicting network implies (SDS, Eq. 5)."""
        ab = self._coef(self.alphas_cumprod, n, x_n)
        return (x_n - jnp.sqrt(ab) * x0_hat) / jnp.sqrt(1.0 - ab)


def make_schedule(name, num_steps):
    """`name` 'cosine' (s = 0.008, MVLift's) or 'linear'."""
    if name == "cosine":
        betas = cosine_betas(num_steps)
    elif name == "linear":
        betas = linear_betas(num_steps)
    else:
        raise ValueError(f"config.diffusion.schedule: unknown schedule {name!r} (cosine, linear)")
    return Schedule(betas=jnp.asarray(betas, jnp.float32),
                    alphas_cumprod=jnp.asarray(np.cumprod(1.0 - betas), jnp.float32))
