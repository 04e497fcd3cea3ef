"""Two-view epipolar geometry: relative pose, fundamental matrix, epipoles and epipolar lines.

Lines are (a, b, c) with a x + b y + c = 0. `normalize_lines` scales them to a² + b² = 1, a ≥ 0,
the form of the paper's line condition L (Sec. 2.1) and of the line-matching losses (Eq. 3, 6),
where `point_line_distance` is the signed distance ⟨l, (x, 1)⟩.

Model coordinates x = s (K⁻¹ p − c) (docs/design.md) are the pixels of a virtual camera with
intrinsics A = [[s, 0, −s c_x], [0, s, −s c_y], [0, 0, 1]] (`affine_intrinsics`), so
`fundamental(A_a, A_b, T_ab)` is F directly in model space; `fundamental` accepts any invertible
upper-triangular intrinsics (skew, non-unit K[2, 2]).
"""
import chex
import jax.numpy as jnp

from anylift_jax.geometry.cameras import invert_rigid
from anylift_jax.geometry.rotations import skew


def relative_pose(w2c_a, w2c_b):
    """T_ab (…, 4, 4) = w2c_b · w2c_a⁻¹: maps camera-a coordinates to camera-b coordinates."""
    return w2c_b @ invert_rigid(w2c_a)


def affine_intrinsics(scale, shift):
    """Intrinsics A (…, 3, 3) of the affine map x = scale · (u − shift) on rays u = K⁻¹ p.

    scale: (…,), shift: (…, 2).
    """
    scale = jnp.asarray(scale, jnp.float32)
    shift = jnp.asarray(shift, jnp.float32)
    z = jnp.zeros_like(scale)
    return jnp.stack([
        jnp.stack([scale, z, -scale * shift[..., 0]], -1),
        jnp.stack([z, scale, -scale * shift[..., 1]], -1),
        jnp.stack([z, z, jnp.ones_like(scale)], -1),
    ], -2)


def fundamental(K_a, K_b, T_ab):
    """F (…, 3, 3) = K_b⁻ᵀ [t]ₓ R K_a⁻¹ with (R, t) from T_ab, so that x_bᵀ F x_a = 0.

    K_a, K_b: (…, 3, 3) any invertible intrinsics; T_ab: (…, 4, 4) from `relative_pose`.
    F keeps the metric scale of t (F = 0 when the camera centres coincide).
    """
    chex.assert_shape([K_a, K_b], (..., 3, 3))
    chex.assert_shape(T_ab, (..., 4, 4))
    E = skew(T_ab[..., :3, 3]) @ T_ab[..., :3, :3]
    return jnp.swapaxes(jnp.linalg.inv(K_b), -1, -2) @ E @ jnp.linalg.inv(K_a)


def epipoles(K_a, K_b, T_ab):
    """Homogeneous epipoles (e_a (…, 3), e_b (…, 3)) in closed form (no SVD of F).

    e_a = K_a (−Rᵀ t) is camera b's centre seen from a (F e_a = 0), e_b = K_b t is camera a's centre
    seen from b (Fᵀ e_b = 0). Third coordinate 0 ⇔ epipole at infinity; scale as is (∝ |t|).
    """
    R, t = T_ab[..., :3, :3], T_ab[..., :3, 3]
    centre_b_in_a = -jnp.einsum("...ji,...j->...i", R, t)
    e_a = jnp.einsum("...ij,...j->...i", K_a, centre_b_in_a)
    e_b = jnp.einsum("...ij,...j->...i", K_b, t)
    return e_a, e_b


def _homogeneous(points):
    return jnp.concatenate([points, jnp.ones_like(points[..., :1])], -1)


def normalize_lines(lines, eps=1e-12):
    """Scale lines (…, 3) to a² + b² = 1 with a ≥ 0 (b ≥ 0 where a = 0).

    Degenerate lines (a² + b² ≤ eps², e.g. a point on the epipole, or F = 0) become (0, 0, 0): no
    NaN in values or gradients, and a zero contribution to line losses.
    """
    a, b = lines[..., 0], lines[..., 1]
    n2 = a * a + b * b
    ok = n2 > eps * eps
    sign = jnp.where((a < 0) | ((a == 0) & (b < 0)), -1.0, 1.0)
    inv = jnp.where(ok, sign / jnp.sqrt(jnp.where(ok, n2, 1.0)), 0.0)
    return lines * inv[..., None]


def epipolar_lines(F, points_a):
    """Normalised epipolar lines (…, N, 3) in view b of points (…, N, 2) of view a: F (x_a, 1).

    F: (…, 3, 3) from `fundamental`. The line-condition L^{a→b} of Eq. 6.
    """
    return normalize_lines(jnp.einsum("...ij,...nj->...ni", F, _homogeneous(points_a)))


def lines_through_epipole(points, epipole):
    """Normalised line (…, N, 3) through each point (…, N, 2) and a homogeneous epipole (…, 3).

    The epipole's leading dims broadcast against the points' (…).

    The line condition L with a sampled epipole (Sec. 2.1): (x, 1) × e. For e at infinity
    (e[2] = 0) the line runs through the point in direction (e[0], e[1]).
    """
    chex.assert_shape(points, (..., 2))
    chex.assert_shape(epipole, (..., 3))
    return normalize_lines(jnp.cross(_homogeneous(points), epipole[..., None, :]))


def lines_affine(lines, scale, shift):
    """Re-express lines (…, 3) for coordinates mapped by x' = scale · (x − shift).

    scale broadcasts against lines.shape[:-1], shift against lines.shape[:-1] + (2,). Returns
    (a, b, scale · (c + a shift_x + b shift_y)): a, b are unchanged, so normalised lines stay
    normalised, and signed distances scale by `scale` like the coordinates do.
    """
    scale = jnp.asarray(scale, lines.dtype)
    shift = jnp.asarray(shift, lines.dtype)
    c = scale * (lines[..., 2] + jnp.sum(lines[..., :2] * shift, -1))
    return jnp.concatenate([lines[..., :2], c[..., None]], -1)


def point_line_distance(lines, points):
    """Signed distance (…, N) of points (…, N, 2) to normalised lines (…, N, 3): a x + b y + c."""
    chex.assert_shape(lines, points.shape[:-1] + (3,))
    return jnp.sum(lines[..., :2] * points, -1) + lines[..., 2]
