"""Least-squares similarity and rigid alignment of point sets (Umeyama 1991), batched.

Used for Procrustes-aligned metrics (PA-MPJPE, WA-MPJPE) and body-fit initialisation. Works in
any dimension D ≥ 2; the rotation is proper (det = +1) even when the best orthogonal fit is a
reflection.
"""
import chex
import jax.numpy as jnp


def umeyama(src, dst, weights=None, with_scale=True):
    """(s, R, t) minimising Σ_n w_n |s R src_n + t − dst_n|².

    src, dst: (…, N, D); weights: (…, N) ≥ 0, or None for all ones; with_scale: False fixes s = 1
    (rigid alignment). Returns s (…,), R (…, D, D), t (…, D). Degenerate inputs (all weight on
    one point, or collinear points in 3D) have non-unique R; the result is then one of the optima.
    """
    chex.assert_equal_shape([src, dst])
    if weights is None:
        weights = jnp.ones(src.shape[:-1], src.dtype)
    chex.assert_shape(weights, src.shape[:-1])
    w = weights / jnp.maximum(jnp.sum(weights, -1, keepdims=True), 1e-12)
    mu_s = jnp.einsum("...n,...nd->...d", w, src)
    mu_d = jnp.einsum("...n,...nd->...d", w, dst)
    xs = src - mu_s[..., None, :]
    xd = dst - mu_d[..., None, :]
    cov = jnp.einsum("...n,...ni,...nj->...ij", w, xd, xs)
    U, S, Vt = jnp.linalg.svd(cov)
    # Flip the axis of the smallest singular value when U Vᵀ would be a reflection.
    d = jnp.where(jnp.linalg.det(U) * jnp.linalg.det(Vt) < 0, -1.0, 1.0)
    D = src.shape[-1]
    flip = jnp.concatenate([jnp.ones(S.shape, S.dtype)[..., :-1], d[..., None]], -1)
    R = (U * flip[..., None, :]) @ Vt
    if with_scale:
        var_s = jnp.einsum("...n,...nd,...nd->...", w, xs, xs)
        s = jnp.sum(S * flip, -1) / jnp.maximum(var_s, 1e-12)
    else:
        s = jnp.ones(S.shape[:-1], S.dtype)
    t = mu_d - s[..., None] * jnp.einsum("...ij,...j->...i", R, mu_s)
    chex.assert_shape(R, src.shape[:-2] + (D, D))
    return s, R, t


def apply_similarity(s, R, t, points):
    """s R x + t for points (…, N, D), with s (…,), R (…, D, D), t (…, D)."""
    return s[..., None, None] * jnp.einsum("...ij,...nj->...ni", R, points) + t[..., None, :]


def procrustes_align(src, dst, weights=None, with_scale=True):
    """src (…, N, D) moved onto dst by the `umeyama` fit: s R src + t."""
    return apply_similarity(*umeyama(src, dst, weights, with_scale), src)
