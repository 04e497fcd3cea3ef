"""Multi-view triangulation of 2D keypoints (Sec. 2.1, end: 3D joints from multi-view 2D).

Confidence-weighted DLT for a start, then Gauss–Newton on the weighted pixel reprojection error
Σ_v w_v |π_v(X) − p_v|². Weight 0 removes a view for that point; a point needs two views of
positive weight (with distinct centres) to be determined — otherwise the result is finite but
meaningless.
"""
import chex
import jax
import jax.numpy as jnp

from anylift_jax.geometry.cameras import pixels_to_rays, project, transform
from anylift_jax.geometry.rotations import safe_norm

_DEPTH_EPS = 1e-6


def _dlt(pix, K, w2c, weights):
    """Weighted DLT: (…, V, N, 2) -> (…, N, 3), least-squares solution of the 2V×4 system with the
    homogeneous coordinate fixed to 1.

    Each view contributes w·(u P₃ − P₁) and w·(v P₃ − P₂) on normalised rays (u, v) = K⁻¹ p with
    P = [R | t]: cv2.triangulatePoints' pixel rows divided by the focal length (when fx = fy and
    there is no skew), which keeps the system equally scaled whatever the intrinsics.
    """
    uv = pixels_to_rays(pix, K)
    P = w2c[..., None, :3, :]  # (…, V, 1, 3, 4)
    rows = jnp.stack([
        uv[..., 0:1] * P[..., 2, :] - P[..., 0, :],
        uv[..., 1:2] * P[..., 2, :] - P[..., 1, :],
    ], -2) * weights[..., None, None]  # (…, V, N, 2, 4)
    rows = jnp.moveaxis(rows, -4, -3)  # (…, N, V, 2, 4)
    A = rows.reshape(rows.shape[:-3] + (-1, 4))
    # Inhomogeneous form (w = 1): min |A[:, :3] X + A[:, 3]|², 3×3 normal equations in closed
    # form. No LAPACK call: batched CPU SVD deadlocks with several devices in one process.
    M, b = A[..., :3], A[..., 3]
    H = jnp.swapaxes(M, -1, -2) @ M
    # Damping keeps the closed-form 3×3 solve finite in float32 for points seen by fewer than two
    # views (rank ≤ 2); Gauss–Newton removes the small bias it adds elsewhere.
    H = H + (1e-6 * jnp.trace(H, axis1=-2, axis2=-1) + 1e-9)[..., None, None] * jnp.eye(3, dtype=H.dtype)
    return -_solve_spd3(H, jnp.einsum("...ji,...j->...i", M, b))


def _solve_spd3(H, g):
    """Solve H x = g for symmetric positive-definite (…, 3, 3) H in closed form (cofactors)."""
    tr = jnp.trace(H, axis1=-2, axis2=-1)[..., None]
    H = H / tr[..., None]  # unit trace: keeps det = O(1) in float32 whatever the units
    g = g / tr
    h0, h1, h2 = H[..., 0, :], H[..., 1, :], H[..., 2, :]
    c0, c1, c2 = jnp.cross(h1, h2), jnp.cross(h2, h0), jnp.cross(h0, h1)
    det = jnp.sum(h0 * c0, -1, keepdims=True)
    return (c0 * g[..., 0:1] + c1 * g[..., 1:2] + c2 * g[..., 2:3]) / det


def _gauss_newton_step(X, pix, K, w2c, weights, damping):
    """One damped Gauss–Newton step on Σ_v w_v |π_v(X) − p_v|² for X (…, N, 3)."""
    pc = transform(w2c, X[..., None, :, :])  # (…, V, N, 3)
    z = jnp.maximum(pc[..., 2], _DEPTH_EPS)
    uv = pc[..., :2] / z[..., None]
    K2 = K[..., None, :2, :2]  # (…, V, 1, 2, 2)
    r = jnp.einsum("...ij,...j->...i", K2, uv) + K[..., None, :2, 2] - pix
    inv_z = 1.0 / z
    o = jnp.zeros_like(z)
    J_pi = jnp.stack([
        jnp.stack([inv_z, o, -uv[..., 0] * inv_z], -1),
        jnp.stack([o, inv_z, -uv[..., 1] * inv_z], -1),
    ], -2)  # d(x/z, y/z) / d(x, y, z): (…, V, N, 2, 3)
    J = K2 @ J_pi @ w2c[..., None, :3, :3]
    Jw = J * weights[..., None, None]
    H = jnp.sum(jnp.swapaxes(Jw, -1, -2) @ J, -4)  # (…, N, 3, 3)
    g = jnp.sum(jnp.einsum("...ji,...j->...i", Jw, r), -3)  # (…, N, 3)
    lam = damping * jnp.trace(H, axis1=-2, axis2=-1) / 3.0 + 1e-6
    H = H + lam[..., None, None] * jnp.eye(3, dtype=H.dtype)
    return X - _solve_spd3(H, g)


def triangulate(pix, K, w2c, weights, gn_steps=3, damping=1e-6):
    """3D points (…, N, 3) seen at pixels pix (…, V, N, 2) by V cameras.

    K: (…, V, 3, 3), w2c: (…, V, 4, 4), weights: (…, V, N) ≥ 0 (detector confidences; 0 = unseen).
    gn_steps: Gauss–Newton steps after the DLT (static); damping: Levenberg term relative to the
    mean curvature trace(H)/3, only there to keep the 3×3 systems invertible.

    Differentiable w.r.t. pix, K, w2c and weights. With gn_steps ≥ 1 the DLT start is treated as
    a constant: at the optimum the derivative of a Gauss–Newton step is the implicit-function
    derivative of the least-squares solution. With gn_steps = 0 the plain DLT is returned and
    differentiated through its 3×3 solve.
    """
    chex.assert_rank([K, w2c, weights], [pix.ndim, pix.ndim, pix.ndim - 1])
    chex.assert_shape(pix, (..., 2))
    chex.assert_equal_shape_prefix([pix, K, w2c, weights], pix.ndim - 2)
    chex.assert_equal_shape([pix[..., 0], weights])
    X = _dlt(pix, K, w2c, weights)
    if gn_steps > 0:
        X = jax.lax.stop_gradient(X)
    for _ in range(gn_steps):
        # A step from a start at or behind a camera (no derivative there) overflows float32:
        # such a point keeps the estimate it had.
        step = _gauss_newton_step(X, pix, K, w2c, weights, damping)
        X = jnp.where(jnp.all(jnp.isfinite(step), -1, keepdims=True), step, X)
    return X


def reprojection_error(points, pix, K, w2c):
    """Pixel distance (…, V, N) between points (…, N, 3) projected by each camera and pix (…, V, N, 2).

    K: (…, V, 3, 3), w2c: (…, V, 4, 4). Gradient 0 where the error is exactly 0.
    """
    proj, _ = project(points[..., None, :, :], K, w2c, eps=_DEPTH_EPS)
    return safe_norm(proj - pix)
