"""Umeyama similarity / rigid alignment: recovery of known transforms and scipy's align_vectors.

Tolerances asserted (float32): exact data recovers R to 1e-5 (entries), s to 1e-5 relative, t to
1e-4 m; with 1 cm noise on 50 points, R within 0.01 rad, s within 1 %, t within 2 cm; the rigid
rotation equals scipy.spatial.transform.Rotation.align_vectors (float64) to 1e-5.
"""
import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from anylift_jax.geometry import align
from anylift_jax.geometry.rotations import geodesic_angle


def _transformed(seed, B=4, N=50, noise=0.0):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(B, N, 3))
    R = Rotation.random(B, random_state=seed).as_matrix()
    s = rng.uniform(0.3, 3.0, B)
    t = rng.normal(size=(B, 3)) * 5
    dst = s[:, None, None] * np.einsum("bij,bnj->bni", R, src) + t[:, None] + rng.normal(size=src.shape) * noise
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return f32(src), f32(dst), s, R, t


def test_umeyama_recovers_exact_similarity():
    src, dst, s, R, t = _transformed(0)
    s_hat, R_hat, t_hat = jax.jit(align.umeyama)(src, dst)
    np.testing.assert_allclose(s_hat, s, rtol=1e-5)
    np.testing.assert_allclose(R_hat, R, atol=1e-5)
    np.testing.assert_allclose(t_hat, t, atol=1e-4)
    np.testing.assert_allclose(align.apply_similarity(s_hat, R_hat, t_hat, src), dst, atol=1e-4)
    np.testing.assert_allclose(align.procrustes_align(src, dst), dst, atol=1e-4)


def test_umeyama_recovers_similarity_under_noise():
    src, dst, s, R, t = _transformed(1, noise=0.01)
    s_hat, R_hat, t_hat = align.umeyama(src, dst)
    assert np.all(np.asarray(geodesic_angle(R_hat, jnp.asarray(R, jnp.float32))) < 0.01)
    np.testing.assert_allclose(s_hat, s, rtol=0.01)
    np.testing.assert_allclose(t_hat, t, atol=0.02)


def test_rigid_alignment_matches_scipy_align_vectors():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    dst = src @ Rotation.random(random_state=2).as_matrix().T + [1.0, -2.0, 0.5] + rng.normal(size=(30, 3)) * 0.1
    w = rng.uniform(0.1, 1.0, 30)
    s_hat, R_hat, t_hat = align.umeyama(jnp.asarray(src, jnp.float32), jnp.asarray(dst, jnp.float32),
                                        jnp.asarray(w, jnp.float32), with_scale=False)
    assert float(s_hat) == 1.0
    centre = lambda x: x - np.sum(w[:, None] * x, 0) / np.sum(w)  # noqa: E731
    ref, _ = Rotation.align_vectors(centre(dst), centre(src), w)
    np.testing.assert_allclose(R_hat, ref.as_matrix(), atol=1e-5)
    mu_s, mu_d = (np.sum(w[:, None] * x, 0) / np.sum(w) for x in (src, dst))
    np.testing.assert_allclose(t_hat, mu_d - ref.as_matrix() @ mu_s, atol=1e-5)


def test_zero_weights_ignore_outliers():
    src, dst, s, R, t = _transformed(3, B=2)
    w = np.ones(src.shape[:2], np.float32)
    w[:, :10] = 0.0
    dst = dst.at[:, :10].add(100.0)  # gross outliers, weight 0
    s_hat, R_hat, t_hat = align.umeyama(src, dst, jnp.asarray(w))
    np.testing.assert_allclose(s_hat, s, rtol=1e-5)
    np.testing.assert_allclose(R_hat, R, atol=1e-5)
    np.testing.assert_allclose(t_hat, t, atol=1e-4)


def test_reflection_yields_proper_rotation():
    src, _, _, _, _ = _transformed(4, B=3)
    dst = src * jnp.asarray([1.0, 1.0, -1.0])  # a mirror image: the best orthogonal fit has det −1
    _, R_hat, _ = align.umeyama(src, dst)
    np.testing.assert_allclose(np.linalg.det(np.asarray(R_hat, np.float64)), 1.0, atol=1e-5)
    _, R_rigid, _ = align.umeyama(src, dst, with_scale=False)
    np.testing.assert_allclose(np.linalg.det(np.asarray(R_rigid, np.float64)), 1.0, atol=1e-5)


def test_two_dimensional_alignment():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(20, 2))
    a = 2.0
    R = np.asarray([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = 1.5 * src @ R.T + [3.0, -1.0]
    s_hat, R_hat, t_hat = align.umeyama(jnp.asarray(src, jnp.float32), jnp.asarray(dst, jnp.float32))
    np.testing.assert_allclose(R_hat, R, atol=1e-5)
    np.testing.assert_allclose([float(s_hat), *np.asarray(t_hat)], [1.5, 3.0, -1.0], atol=1e-5)


def test_vmap_jit_and_gradients():
    src, dst, _, _, _ = _transformed(6, B=3, noise=0.05)
    batched = align.procrustes_align(src, dst)
    np.testing.assert_allclose(jax.jit(jax.vmap(align.procrustes_align))(src, dst), batched, atol=1e-5)
    g = jax.grad(lambda d: jnp.sum((align.procrustes_align(src, d) - d) ** 2))(dst)
    assert np.all(np.isfinite(np.asarray(g)))
