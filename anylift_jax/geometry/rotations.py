"""Rotation representations: axis-angle, 3x3 matrices, unit quaternions (w, x, y, z) and 6D.

Every function is batched over leading dims, jit-able, and has finite gradients everywhere,
including the rotation angles 0 and π where the textbook formulas divide by zero: small angles
use Taylor expansions, and norms go through `safe_norm`, whose gradient at 0 is 0.

6D (Zhou et al. 2019, "On the continuity of rotation representations"): the first two columns of
R concatenated, `(R[:, 0], R[:, 1])`, mapped back by Gram–Schmidt. VPoser's decoder emits the
same two columns interleaved (a row-major (3, 2) block): `d.reshape(..., 3, 2)` → `swapaxes(-1,
-2).reshape(..., 6)` converts.
"""
import jax.numpy as jnp

_SMALL_ANGLE2 = 1e-6  # θ² below which Taylor expansions (error O(θ⁴) < float32 eps) are used


def safe_norm(x, axis=-1, keepdims=False):
    """Euclidean norm whose gradient at x = 0 is 0 instead of NaN (|x| is not differentiable there)."""
    n2 = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    ok = n2 > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, n2, 1.0)), 0.0)


def skew(v):
    """(…, 3) -> (…, 3, 3) cross-product matrix [v]ₓ, so that [v]ₓ w = v × w."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = jnp.zeros_like(x)
    return jnp.stack([
        jnp.stack([o, -z, y], -1),
        jnp.stack([z, o, -x], -1),
        jnp.stack([-y, x, o], -1),
    ], -2)


def axis_angle_to_matrix(aa):
    """Rodrigues' formula: axis-angle (…, 3) (direction = axis, norm = angle in rad) -> (…, 3, 3)."""
    t2 = jnp.sum(aa * aa, -1)
    small = t2 < _SMALL_ANGLE2
    t2s = jnp.where(small, 1.0, t2)
    t = jnp.sqrt(t2s)
    a = jnp.where(small, 1.0 - t2 / 6.0, jnp.sin(t) / t)  # sin θ / θ
    # (1 − cos θ) / θ², written with sin²(θ/2) to avoid cancellation in 1 − cos θ for small θ
    b = jnp.where(small, 0.5 - t2 / 24.0, 2.0 * jnp.sin(0.5 * t) ** 2 / t2s)
    K = skew(aa)
    eye = jnp.eye(3, dtype=aa.dtype)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def quaternion_to_matrix(q):
    """Quaternion (…, 4) as (w, x, y, z), normalised here (any non-zero scale) -> (…, 3, 3)."""
    q = q / safe_norm(q, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return jnp.stack([
        jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        jnp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        jnp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quaternion(R):
    """(…, 3, 3) rotation -> unit quaternion (…, 4) (w, x, y, z) with w ≥ 0.

    Shepperd's method: of the four algebraically equivalent formulas, each dividing by one of
    4|w|, 4|x|, 4|y|, 4|z|, use the one with the largest divisor, so precision holds at every
    angle (the trace formula alone breaks down near π).
    """
    m = R
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4·(w², x², y², z²) from the diagonal
    sq = jnp.stack([
        1 + m00 + m11 + m22,
        1 + m00 - m11 - m22,
        1 - m00 + m11 - m22,
        1 - m00 - m11 + m22,
    ], -1)
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    # Row i is 4·q_i·q; dividing by 2·sqrt(sq_i) = 4|q_i| gives ±q.
    cand = jnp.stack([
        jnp.stack([sq[..., 0], d21, d02, d10], -1),
        jnp.stack([d21, sq[..., 1], s10, s02], -1),
        jnp.stack([d02, s10, sq[..., 2], s21], -1),
        jnp.stack([d10, s02, s21, sq[..., 3]], -1),
    ], -2)
    # The chosen divisor is ≥ 1 (the largest of four values summing to 4); the floor only keeps the
    # discarded candidates (and their zero-weighted gradients) finite.
    div = 2.0 * jnp.sqrt(jnp.maximum(sq, 0.25))
    cand = cand / div[..., None]
    pick = jnp.argmax(sq, -1)
    q = jnp.sum(cand * (jnp.arange(4) == pick[..., None])[..., None], -2)
    q = q / safe_norm(q, keepdims=True)
    return jnp.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quaternion(aa):
    """Axis-angle (…, 3) -> unit quaternion (…, 4) (w, x, y, z)."""
    t2 = jnp.sum(aa * aa, -1)
    small = t2 < _SMALL_ANGLE2
    t = jnp.sqrt(jnp.where(small, 1.0, t2))
    half_sinc = jnp.where(small, 0.5 - t2 / 48.0, jnp.sin(0.5 * t) / t)  # sin(θ/2) / θ
    w = jnp.where(small, 1.0 - t2 / 8.0, jnp.cos(0.5 * t))
    return jnp.concatenate([w[..., None], half_sinc[..., None] * aa], -1)


def quaternion_to_axis_angle(q):
    """Quaternion (…, 4) (w, x, y, z), any non-zero scale -> axis-angle (…, 3), angle in [0, π]."""
    q = q / safe_norm(q, keepdims=True)
    q = jnp.where(q[..., :1] < 0, -q, q)  # q and −q are the same rotation; take θ ≤ π
    w, v = q[..., 0], q[..., 1:]
    n = safe_norm(v)
    small = n < 1e-3
    ns = jnp.where(small, 1.0, n)
    ws = jnp.where(small, w, 1.0)
    # θ / sin(θ/2) with θ = 2·atan2(|v|, w); for small |v| (then w ≈ 1): 2/w − 2|v|²/(3w³)
    f = jnp.where(small, 2.0 / ws - 2.0 * n * n / (3.0 * ws ** 3), 2.0 * jnp.arctan2(ns, w) / ns)
    return f[..., None] * v


def matrix_to_axis_angle(R):
    """(…, 3, 3) -> axis-angle (…, 3), angle in [0, π] (through the quaternion: exact near π)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def rot6d_to_matrix(d6):
    """6D (…, 6) = (first column, second column), any scale -> rotation (…, 3, 3) by Gram–Schmidt."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / jnp.maximum(safe_norm(a1, keepdims=True), 1e-12)
    a2 = a2 - jnp.sum(b1 * a2, -1, keepdims=True) * b1
    b2 = a2 / jnp.maximum(safe_norm(a2, keepdims=True), 1e-12)
    b3 = jnp.cross(b1, b2)
    return jnp.stack([b1, b2, b3], -1)


def matrix_to_rot6d(R):
    """(…, 3, 3) -> 6D (…, 6): the first two columns of R, concatenated."""
    return jnp.concatenate([R[..., :, 0], R[..., :, 1]], -1)


def geodesic_angle(R1, R2):
    """Angle (…,) in [0, π] of the rotation R1ᵀ R2, i.e. the geodesic distance on SO(3).

    atan2(sin θ, cos θ) rather than arccos(cos θ): precise and with finite gradients near 0 and π.
    """
    M = jnp.swapaxes(R1, -1, -2) @ R2
    cos = 0.5 * (M[..., 0, 0] + M[..., 1, 1] + M[..., 2, 2] - 1.0)
    vee = jnp.stack([M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]], -1)
    return jnp.arctan2(0.5 * safe_norm(vee), cos)
