"""Epipolar geometry against cv2.computeCorrespondEpilines, the projection-matrix closed form of F
(Hartley & Zisserman Eq. 9.1, F = [e_b]ₓ P_b P_a⁺, computed in float64 numpy) and true
correspondences.

Tolerances asserted (float32): |x_bᵀ F x_a| as a point-line distance ≤ 1e-3 px (observed ≤ 3e-4)
on ~1000 px images; lines vs OpenCV: (a, b) 1e-6 (observed 2e-7), c 1e-3 px (observed 3e-4); F/|F| vs the closed form 1e-5;
epipole vs the projected camera centre 1e-2 px (|e| up to ~2000 px); model-space lines via
`affine_intrinsics` vs `lines_affine` of ray-space lines 1e-4 (model units ≈ person height).
"""
import cv2
import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax.geometry import cameras as cam
from anylift_jax.geometry import epipolar as epi


def _two_views(seed, n=25, skew=False):
    """Two float32 cameras 3–5 m from a 1 m cube of points, their intrinsics and the pixels."""
    rng = np.random.default_rng(seed)
    eyes = rng.normal(size=(2, 3))
    eyes *= rng.uniform(3.0, 5.0, (2, 1)) / np.linalg.norm(eyes, axis=-1, keepdims=True)
    w2c = cam.look_at(jnp.asarray(eyes, jnp.float32), jnp.zeros((2, 3)))
    K = np.array(cam.intrinsics(jnp.asarray(rng.uniform(600, 1400, 2)), 1000, 800))
    K[1, 1, 1] *= 1.05
    if skew:  # a general invertible upper-triangular K: skew and K[2, 2] ≠ 1
        K[:, 0, 1] = [3.0, -2.0]
        K = K * np.asarray([1.0, 2.5])[:, None, None]
    K = jnp.asarray(K, jnp.float32)
    points = jnp.asarray(rng.uniform(-0.5, 0.5, (n, 3)), jnp.float32)
    # project() assumes K[2] = (0, 0, 1): go through homogeneous coordinates for general K.
    pc = cam.transform(w2c, points[None])
    hom = jnp.einsum("vij,vnj->vni", K, pc)
    pix = hom[..., :2] / hom[..., 2:]
    return K, w2c, points, pix


def test_correspondences_satisfy_epipolar_constraint():
    K, w2c, _, pix = _two_views(0)
    F = jax.jit(epi.fundamental)(K[0], K[1], epi.relative_pose(w2c[0], w2c[1]))
    lines_b = epi.epipolar_lines(F, pix[0])
    assert lines_b.shape == (25, 3)
    assert np.max(np.abs(epi.point_line_distance(lines_b, pix[1]))) < 1e-3
    # and symmetrically, Fᵀ maps view-b points to lines in view a
    lines_a = epi.epipolar_lines(F.T, pix[1])
    assert np.max(np.abs(epi.point_line_distance(lines_a, pix[0]))) < 1e-3


def test_epipolar_lines_match_cv2_compute_correspond_epilines():
    K, w2c, _, pix = _two_views(1)
    F = epi.fundamental(K[0], K[1], epi.relative_pose(w2c[0], w2c[1]))
    ours = np.asarray(epi.epipolar_lines(F, pix[0]))
    ref = cv2.computeCorrespondEpilines(np.asarray(pix[0], np.float64), 1, np.asarray(F, np.float64))[:, 0]
    ref = ref * np.where(ref[:, :1] < 0, -1.0, 1.0)  # OpenCV normalises a² + b² = 1 but not the sign
    np.testing.assert_allclose(ours[:, :2], ref[:, :2], atol=1e-6)
    np.testing.assert_allclose(ours[:, 2], ref[:, 2], atol=1e-3)


def test_fundamental_with_general_intrinsics_matches_projection_matrix_closed_form():
    K, w2c, _, pix = _two_views(2, skew=True)
    F = np.asarray(epi.fundamental(K[0], K[1], epi.relative_pose(w2c[0], w2c[1])), np.float64)
    P = np.asarray(K, np.float64) @ np.asarray(w2c, np.float64)[:, :3]
    centre_a = np.append(np.asarray(cam.invert_rigid(w2c[0])[:3, 3], np.float64), 1.0)
    e_b = P[1] @ centre_a
    e_b_x = np.cross(np.eye(3), e_b)  # [e_b]ₓ: its row i is e_i × e_b
    F_ref = e_b_x @ P[1] @ np.linalg.pinv(P[0])
    F_ref /= np.linalg.norm(F_ref)
    F /= np.linalg.norm(F)
    F *= np.sign(np.sum(F * F_ref))
    np.testing.assert_allclose(F, F_ref, atol=1e-5)
    lines = epi.epipolar_lines(jnp.asarray(F, jnp.float32), pix[0])
    assert np.max(np.abs(epi.point_line_distance(lines, pix[1]))) < 1e-3


def test_epipoles_are_null_vectors_and_projected_camera_centres():
    K, w2c, _, _ = _two_views(3)
    T_ab = epi.relative_pose(w2c[0], w2c[1])
    F = np.asarray(epi.fundamental(K[0], K[1], T_ab), np.float64)
    e_a, e_b = (np.asarray(e, np.float64) for e in epi.epipoles(K[0], K[1], T_ab))
    assert np.linalg.norm(F @ e_a) < 1e-5 * np.linalg.norm(F) * np.linalg.norm(e_a)
    assert np.linalg.norm(F.T @ e_b) < 1e-5 * np.linalg.norm(F) * np.linalg.norm(e_b)
    c2w = np.asarray(cam.invert_rigid(w2c), np.float64)
    Kd, w2cd = np.asarray(K, np.float64), np.asarray(w2c, np.float64)
    for e, view, other in ((e_a, 0, 1), (e_b, 1, 0)):
        rvec = cv2.Rodrigues(w2cd[view, :3, :3])[0]
        ref = cv2.projectPoints(c2w[other, :3, 3][None], rvec, w2cd[view, :3, 3], Kd[view], None)[0][0, 0]
        np.testing.assert_allclose(e[:2] / e[2], ref, atol=1e-2)


def test_lines_through_epipole_equal_epipolar_lines_for_true_correspondences():
    K, w2c, _, pix = _two_views(4)
    T_ab = epi.relative_pose(w2c[0], w2c[1])
    _, e_b = epi.epipoles(K[0], K[1], T_ab)
    via_F = epi.epipolar_lines(epi.fundamental(K[0], K[1], T_ab), pix[0])
    via_e = epi.lines_through_epipole(pix[1], e_b)
    np.testing.assert_allclose(via_e[:, :2], via_F[:, :2], atol=1e-4)
    np.testing.assert_allclose(via_e[:, 2], via_F[:, 2], atol=0.1)  # c in pixels, |c| up to ~1000


def test_epipole_at_infinity_gives_parallel_lines():
    # Camera b = camera a shifted along its own x axis: epipoles at infinity, epipolar lines are the
    # horizontal image rows (a, b, c) = (0, 1, −y).
    K = cam.intrinsics(jnp.asarray([900.0, 900.0]), 1000, 800)
    w2c_a = cam.look_at(jnp.asarray([0.0, -4.0, 1.0]), jnp.asarray([0.0, 0.0, 1.0]))
    w2c_b = w2c_a.at[0, 3].add(-0.5)
    T_ab = epi.relative_pose(w2c_a, w2c_b)
    e_a, e_b = epi.epipoles(K[0], K[1], T_ab)
    np.testing.assert_allclose([e_a[2], e_b[2]], 0.0, atol=1e-6)
    pts = jnp.asarray([[100.0, 200.0], [640.0, 17.0], [3.0, 700.0]])
    expected = np.stack([np.zeros(3), np.ones(3), -np.asarray(pts[:, 1])], -1)
    np.testing.assert_allclose(epi.lines_through_epipole(pts, e_b), expected, atol=1e-4)
    np.testing.assert_allclose(epi.epipolar_lines(epi.fundamental(K[0], K[1], T_ab), pts), expected, atol=1e-4)


def test_normalize_lines_convention_and_degenerate_lines():
    lines = jnp.asarray([[-3.0, 4.0, 10.0], [0.0, -2.0, 6.0], [2.0, 0.0, -4.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0]])
    out = np.asarray(epi.normalize_lines(lines))
    np.testing.assert_allclose(out[:3], [[0.6, -0.8, -2.0], [0.0, 1.0, -3.0], [1.0, 0.0, -2.0]], atol=1e-6)
    np.testing.assert_array_equal(out[3:], 0.0)
    grads = jax.grad(lambda l: jnp.sum(epi.normalize_lines(l) ** 2 + epi.normalize_lines(l)))(lines)
    assert np.all(np.isfinite(np.asarray(grads)))
    # The line through a point lying on the epipole is degenerate: zeros, finite gradients.
    e = jnp.asarray([4.0, 6.0, 2.0])
    pts = jnp.asarray([[2.0, 3.0], [5.0, 1.0]])
    np.testing.assert_array_equal(epi.lines_through_epipole(pts, e)[0], 0.0)
    g_pts, g_e = jax.grad(lambda p, q: jnp.sum(epi.lines_through_epipole(p, q)), argnums=(0, 1))(pts, e)
    assert np.all(np.isfinite(np.asarray(g_pts))) and np.all(np.isfinite(np.asarray(g_e)))


def test_point_line_distance_matches_textbook_formula():
    rng = np.random.default_rng(5)
    p1, p2, q = (rng.normal(size=(40, 2)) * 3 for _ in range(3))
    lines = epi.lines_through_epipole(jnp.asarray(p1, jnp.float32)[:, None],
                                      jnp.asarray(np.concatenate([p2, np.ones((40, 1))], -1), jnp.float32))
    d = np.asarray(epi.point_line_distance(lines, jnp.asarray(q, jnp.float32)[:, None]))[:, 0]
    u = p2 - p1
    ref = np.abs(u[:, 0] * (q - p1)[:, 1] - u[:, 1] * (q - p1)[:, 0]) / np.linalg.norm(u, axis=-1)
    np.testing.assert_allclose(np.abs(d), ref, atol=1e-5)


def test_lines_affine_scales_signed_distances():
    rng = np.random.default_rng(6)
    lines = epi.normalize_lines(jnp.asarray(rng.normal(size=(3, 10, 3)), jnp.float32))
    pts = jnp.asarray(rng.normal(size=(3, 10, 2)), jnp.float32)
    scale = jnp.asarray([0.5, 2.0, -3.0])[:, None]
    shift = jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)[:, None]
    moved = epi.lines_affine(lines, scale, shift)
    np.testing.assert_allclose(moved[..., :2], lines[..., :2])  # still normalised
    np.testing.assert_allclose(epi.point_line_distance(moved, scale[..., None] * (pts - shift)),
                               scale * epi.point_line_distance(lines, pts), atol=1e-5)


def test_model_space_fundamental_from_affine_intrinsics_matches_lines_affine():
    # Model coordinates x = s (K⁻¹ p − c) are pixels of the virtual camera A = affine_intrinsics(s, c).
    K, w2c, _, pix = _two_views(7)
    T_ab = epi.relative_pose(w2c[0], w2c[1])
    rays = cam.pixels_to_rays(pix, K)
    s = jnp.asarray([1.7, 2.3])
    c = rays[:, 0]  # e.g. the first keypoint as the centre
    x = s[:, None, None] * (rays - c[:, None])
    A = epi.affine_intrinsics(s, c)
    lines_model = epi.epipolar_lines(epi.fundamental(A[0], A[1], T_ab), x[0])
    assert np.max(np.abs(epi.point_line_distance(lines_model, x[1]))) < 1e-5
    lines_rays = epi.epipolar_lines(epi.fundamental(jnp.eye(3), jnp.eye(3), T_ab), rays[0])
    np.testing.assert_allclose(epi.lines_affine(lines_rays, s[1], c[1]), lines_model, atol=1e-4)


def test_batched_jit_and_vmap_agree():
    Ks, w2cs, pixs = zip(*[(k, w, p) for k, w, _, p in (_two_views(s) for s in (8, 9, 10))])
    K, w2c, pix = jnp.stack(Ks), jnp.stack(w2cs), jnp.stack(pixs)  # (3, 2, …)

    def lines(K, w2c, pix):
        T_ab = epi.relative_pose(w2c[..., 0, :, :], w2c[..., 1, :, :])
        return epi.epipolar_lines(epi.fundamental(K[..., 0, :, :], K[..., 1, :, :], T_ab), pix[..., 0, :, :])

    batched = lines(K, w2c, pix)
    assert batched.shape == (3, 25, 3) and batched.dtype == jnp.float32
    np.testing.assert_allclose(jax.jit(jax.vmap(lines))(K, w2c, pix), batched, atol=1e-5)
    np.testing.assert_allclose(lines(K[1], w2c[1], pix[1]), batched[1], atol=1e-5)
