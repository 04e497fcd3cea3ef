"""Object pose from 3D object keypoints (Sec. 2.2, "Inference on Real-World Videos").

Given the triangulated keypoints Q (T, M, 3) and the category's canonical keypoints P (M, 3), the
pose O_t = (r_t, t_t, s) minimises Σ_t Σ_m w_tm |s R_t p_m + t_t − q_tm|² with one scale s for the
sequence. The optimal R_t does not depend on s (Umeyama 1991: it comes from the SVD of the
cross-covariance alone), so the joint optimum is closed-form: per-frame Umeyama rotations, then
s = Σ_t W_t tr(D S)_t / Σ_t W_t σ²_P,t (the per-frame numerators and denominators of Umeyama's
scale, each weighted by the frame's total weight W_t), then t_t = μ_Q,t − s R_t μ_P,t.

Temporal smoothing: a Gaussian-weighted local linear fit of the 6D rotations (Zhou et al. 2019)
and translations, each frame weighted by its total keypoint weight, so frames with fewer than 3
weighted keypoints (no pose) are filled from their neighbours; Gram–Schmidt then makes the
smoothed 6D a rotation again.
"""
import functools
import math

import chex
import jax
import jax.numpy as jnp

from anylift_jax.geometry.align import umeyama
from anylift_jax.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix
from anylift_jax.hoi.objects import load_category

# Default std (frames) of the temporal Gaussian; the kernel spans ±KERNEL_RADIUS std.
SMOOTH_SIGMA = 2.0
KERNEL_RADIUS = 3.0
MIN_KEYPOINTS = 3


def smooth(x, confidence, sigma):
    """Confidence-weighted local linear regression along time with a Gaussian kernel of std
    `sigma` frames (static; 0 returns x unchanged): x (T, C), confidence (T,) ≥ 0 -> (T, C).

    At each t, a + b (τ − t) is fitted to x_τ with weights g(τ − t) c_τ and a is returned. A local
    *linear* fit, unlike a plain normalised convolution, has no lag at the clip ends or around
    gaps for an object moving at constant velocity; where the window holds a single confident
    frame it falls back to the weighted mean. Frames whose whole window has zero confidence
    come back as 0.
    """
    if sigma <= 0:
        return x
    r = int(math.ceil(KERNEL_RADIUS * sigma))
    d = jnp.arange(-r, r + 1, dtype=x.dtype)
    g = jnp.exp(-0.5 * (d / sigma) ** 2)
    # Σ_τ k(τ − t) v_τ, zero beyond the ends (numpy's correlate, 'same').
    window = jax.vmap(lambda v, k: jnp.correlate(v, k, mode="same"), in_axes=(1, None), out_axes=1)
    c = confidence[:, None]
    s0, s1, s2 = (window(c, g * d ** p)[:, 0] for p in range(3))
    t0, t1 = window(c * x, g), window(c * x, g * d)
    det = s0 * s2 - s1 * s1
    linear = det > 1e-6 * jnp.maximum(s0 * s2, 1e-30)
    a_lin = (s2[:, None] * t0 - s1[:, None] * t1) / jnp.where(linear, det, 1.0)[:, None]
    a_const = t0 / jnp.maximum(s0, 1e-12)[:, None]
    return jnp.where(linear[:, None], a_lin, a_const)


@functools.partial(jax.jit, static_argnames="sigma")
def fit_pose(Q, weights, P, sigma=SMOOTH_SIGMA):
    """Object pose of keypoints Q (T, M, 3) with weights (T, M) ≥ 0 against canonical P (M, 3).

    Returns (rot6d (T, 6), transl (T, 3), scale ()) with Q ≈ scale R P + transl. A frame with
    fewer than MIN_KEYPOINTS positive weights contributes nothing and is filled by smoothing
    (with sigma = 0 its pose is arbitrary). Needs one frame with MIN_KEYPOINTS weighted,
    non-collinear keypoints.
    """
    T, M = Q.shape[:2]
    chex.assert_shape([Q, weights, P], [(T, M, 3), (T, M), (M, 3)])
    Pt = jnp.broadcast_to(P, Q.shape)
    _, R, _ = umeyama(Pt, Q, weights)
    total = jnp.sum(weights, -1)
    frame_w = jnp.where(jnp.sum(weights > 0, -1) >= MIN_KEYPOINTS, total, 0.0)
    w = weights / jnp.maximum(total, 1e-12)[:, None]
    mu_p = jnp.einsum("tm,md->td", w, P)
    mu_q = jnp.einsum("tm,tmd->td", w, Q)
    xp = P - mu_p[:, None]
    xq = Q - mu_q[:, None]
    # Umeyama's scale numerator tr(D S) = Σ_m w_m (R x_p,m) · x_q,m, its denominator the variance.
    num = jnp.einsum("tm,tij,tmj,tmi->t", w, R, xp, xq)
    var = jnp.einsum("tm,tmd,tmd->t", w, xp, xp)
    scale = jnp.sum(frame_w * num) / jnp.maximum(jnp.sum(frame_w * var), 1e-12)
    transl = mu_q - scale * jnp.einsum("tij,tj->ti", R, mu_p)
    rot6d = matrix_to_rot6d(rot6d_to_matrix(smooth(matrix_to_rot6d(R), frame_w, sigma)))
    return rot6d, smooth(transl, frame_w, sigma), scale


def object_pose_from_keypoints(Q, weights, category, sigma=SMOOTH_SIGMA):
    """Object pose in the frame of Q (the world frame of the lifting output).

    Q: (T, M, 3) 3D object keypoints (triangulated); weights: (T, M) confidences or None for all
    ones; category: an `ObjectCategory` or a category name. Returns the lifting-output keys
    {"object_rot6d": (T, 6), "object_transl": (T, 3), "object_scale": ()} (docs/keypoint-archive.md).
    """
    cat = load_category(category) if isinstance(category, str) else category
    Q = jnp.asarray(Q, jnp.float32)
    chex.assert_shape(Q, (None, cat.num_keypoints, 3))
    weights = jnp.ones(Q.shape[:2], Q.dtype) if weights is None else jnp.asarray(weights, Q.dtype)
    rot6d, transl, scale = fit_pose(Q, weights, jnp.asarray(cat.keypoints), sigma=sigma)
    return {"object_rot6d": rot6d, "object_transl": transl, "object_scale": scale}
