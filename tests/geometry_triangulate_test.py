"""Triangulation against cv2.triangulatePoints, scipy.optimize.least_squares and exact data.

Tolerances asserted (float32, cameras 3–5 m away, f ≈ 1000 px), all 1e-5 m: DLT vs OpenCV's DLT
on noisy 2-view data (observed 2e-7); exact data from 2–8 views (observed 2e-7); the default 3
Gauss–Newton steps vs scipy's float64 least-squares optimum of the weighted reprojection error
with 1 px noise (observed 2e-7; DLT alone is 3e-3 off, one GN step 6e-6); missing views
(weight 0, garbage pixels) vs scipy's optimum over the observed views; the jacobian
w.r.t. pixels (≈ 4e-3 m/px) matches central finite differences to 2 % + 2e-5.
"""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import least_squares

from anylift_jax.geometry import cameras as cam
from anylift_jax.geometry.triangulate import reprojection_error, triangulate


def _rig(seed, V, N=17, noise=0.0, same_focal=False):
    """V cameras on a 3–5 m shell around ~1 m of points; float32 (pix, K, w2c, points)."""
    rng = np.random.default_rng(seed)
    eyes = rng.normal(size=(V, 3))
    eyes *= rng.uniform(3.0, 5.0, (V, 1)) / np.linalg.norm(eyes, axis=-1, keepdims=True)
    w2c = cam.look_at(jnp.asarray(eyes, jnp.float32), jnp.asarray(rng.uniform(-0.2, 0.2, (V, 3)), jnp.float32))
    focal = np.full(V, 1000.0) if same_focal else rng.uniform(700, 1400, V)
    K = cam.intrinsics(jnp.asarray(focal, jnp.float32), 1280, 720)
    points = jnp.asarray(rng.uniform(-0.5, 0.5, (N, 3)), jnp.float32)
    pix, _ = cam.project(points[None], K, w2c)
    pix = pix + jnp.asarray(rng.normal(size=pix.shape) * noise, jnp.float32)
    return pix, K, w2c, points


def test_dlt_matches_cv2_triangulate_points_on_two_views():
    # With equal focal lengths OpenCV's pixel-space DLT rows are ours times f. Ours solves them with
    # the fourth coordinate fixed to 1 (least squares, no SVD), OpenCV by SVD: with 1 px noise the
    # two algebraic estimates differ at second order, tens of micrometres at these depths.
    pix, K, w2c, _ = _rig(0, V=2, noise=1.0, same_focal=True)
    P = np.asarray(K, np.float64) @ np.asarray(w2c, np.float64)[:, :3]
    hom = cv2.triangulatePoints(P[0], P[1], np.asarray(pix[0], np.float64).T, np.asarray(pix[1], np.float64).T)
    ref = (hom[:3] / hom[3]).T
    ones = jnp.ones(pix.shape[:-1])
    tri = jax.jit(triangulate, static_argnames="gn_steps")
    np.testing.assert_allclose(tri(pix, K, w2c, ones, gn_steps=0), ref, atol=1e-4)
    # Gauss–Newton then lowers the reprojection error below the algebraic (DLT) optimum's.
    refined = tri(pix, K, w2c, ones)
    err = lambda X: float(jnp.sum(reprojection_error(jnp.asarray(X, jnp.float32), pix, K, w2c) ** 2))  # noqa: E731
    assert err(refined) <= err(ref) + 1e-3


def test_exact_data_from_two_to_eight_views():
    pix, K, w2c, points = _rig(1, V=8)
    tri = jax.jit(triangulate)
    for V in range(2, 9):  # the first V views (one compiled function: the others get weight 0)
        weights = jnp.ones(pix.shape[:-1]).at[V:].set(0.0)
        np.testing.assert_allclose(tri(pix, K, w2c, weights), points, atol=1e-5, err_msg=f"V={V}")


def _scipy_weighted_optimum(pix, K, w2c, weights, start):
    pix, K, w2c, weights = (np.asarray(a, np.float64) for a in (pix, K, w2c, weights))

    def residuals(X, n):
        pc = np.einsum("vij,j->vi", w2c[:, :3, :3], X) + w2c[:, :3, 3]
        proj = np.einsum("vij,vj->vi", K[:, :2, :2], pc[:, :2] / pc[:, 2:]) + K[:, :2, 2]
        return (np.sqrt(weights[:, n, None]) * (proj - pix[:, n])).ravel()

    return np.stack([least_squares(residuals, start[n], args=(n,), xtol=1e-12, ftol=1e-12).x
                     for n in range(pix.shape[1])])


def test_gauss_newton_reaches_scipy_least_squares_optimum_with_weights():
    pix, K, w2c, points = _rig(10, V=4, noise=1.0)
    weights = jnp.asarray(np.random.default_rng(10).uniform(0.2, 1.0, pix.shape[:-1]), jnp.float32)
    X = jax.jit(triangulate)(pix, K, w2c, weights)  # the default 3 steps
    ref = _scipy_weighted_optimum(pix, K, w2c, weights, np.asarray(points, np.float64))
    np.testing.assert_allclose(X, ref, atol=1e-5)
    assert np.max(np.abs(np.asarray(X) - np.asarray(points))) < 0.02  # 1 px noise ≈ 4 mm at 4 m


def test_missing_views_with_zero_weight_are_ignored():
    pix, K, w2c, points = _rig(11, V=6, noise=0.5)
    rng = np.random.default_rng(11)
    weights = np.ones(pix.shape[:-1], np.float32)
    missing = rng.random(weights.shape) < 0.4
    missing[:2, :] = False  # every point keeps ≥ 2 views
    weights[missing] = 0.0
    garbage = pix.at[jnp.asarray(missing)].set(jnp.asarray([1e4, -1e4]))
    X = jax.jit(triangulate)(garbage, K, w2c, jnp.asarray(weights))
    # scipy's optimum over the observed views only (zero-weight residuals vanish)
    ref = _scipy_weighted_optimum(pix, K, w2c, weights, np.asarray(points, np.float64))
    np.testing.assert_allclose(X, ref, atol=1e-5)


def test_gradients_finite_and_match_finite_differences():
    pix, K, w2c, _ = _rig(12, V=3, N=4)
    weights = jnp.ones(pix.shape[:-1]).at[2, 0].set(0.0)  # a missing view too
    tri = jax.jit(lambda p, k, e: triangulate(p, k, e, weights))
    J, J_K, J_w2c = jax.jit(jax.jacrev(tri, argnums=(0, 1, 2)))(pix, K, w2c)  # J: (N, 3, V, N, 2)
    for g in (J, J_K, J_w2c):
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(J[:, :, 2, 0]) == 0.0)  # an unseen pixel cannot move any point
    h = 0.5  # px; moves the point ~2 mm: far above float32 rounding, still in the linear regime
    for v, n in [(0, 0), (1, 2), (2, 3)]:
        for c in range(2):
            d = jnp.zeros_like(pix).at[v, n, c].set(h)
            fd = (tri(pix + d, K, w2c)[n] - tri(pix - d, K, w2c)[n]) / (2 * h)
            np.testing.assert_allclose(J[n, :, v, n, c], fd, rtol=0.02, atol=2e-5)


def test_reprojection_error_matches_cv2_project_points():
    pix, K, w2c, points = _rig(13, V=3, noise=2.0)
    err = np.asarray(jax.jit(reprojection_error)(points, pix, K, w2c))
    assert err.shape == (3, 17)
    for v in range(3):
        rvec = cv2.Rodrigues(np.asarray(w2c[v, :3, :3], np.float64))[0]
        ref = cv2.projectPoints(np.asarray(points, np.float64), rvec, np.asarray(w2c[v, :3, 3], np.float64),
                                np.asarray(K[v], np.float64), None)[0][:, 0]
        np.testing.assert_allclose(err[v], np.linalg.norm(ref - np.asarray(pix[v], np.float64), axis=-1), atol=1e-3)
    g = jax.jit(jax.grad(lambda X: jnp.sum(reprojection_error(X, cam.project(X[None], K, w2c)[0], K, w2c))))(points)
    assert np.all(np.isfinite(np.asarray(g)))  # zero error: gradient defined (0), not NaN


def test_batched_leading_dims_jit_and_vmap():
    rigs = [_rig(20 + i, V=3, N=5, noise=0.5) for i in range(2)]
    pix, K, w2c, _ = (jnp.stack(a) for a in zip(*rigs))  # (2, 3, …)
    weights = jnp.ones(pix.shape[:-1])
    batched = jax.jit(triangulate)(pix, K, w2c, weights)
    assert batched.shape == (2, 5, 3) and batched.dtype == jnp.float32
    np.testing.assert_allclose(jax.jit(jax.vmap(triangulate))(pix, K, w2c, weights), batched, atol=1e-5)


def test_points_seen_by_fewer_than_two_views_stay_finite():
    pix, K, w2c, _ = _rig(2, V=3)
    weights = jnp.ones(pix.shape[:-1]).at[1:, :2].set(0.0).at[:, 2].set(0.0)  # one view, no view
    X = jax.jit(triangulate)(pix, K, w2c, weights)
    assert np.isfinite(np.asarray(X)).all()
