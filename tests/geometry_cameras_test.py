"""Pinhole cameras against OpenCV (projectPoints, undistortPoints, Rodrigues) and numpy inverses.

Tolerances asserted (float32): projection 1e-3 px on ~1000 px images (observed ≈ 1e-4);
rays 1e-6; back-projection round trip 1e-5 m at 2–6 m depth; rigid inverse 1e-6;
trajectory features 1e-5 under a change of world frame and of world scale.
"""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from anylift_jax.geometry import cameras as cam


def _random_scene(seed, n_cams=4, n_points=30):
    """Cameras 2–6 m from the origin looking near it, points within 0.7 m of it, K without skew."""
    rng = np.random.default_rng(seed)
    eyes = rng.normal(size=(n_cams, 3))
    eyes *= rng.uniform(2.0, 6.0, (n_cams, 1)) / np.linalg.norm(eyes, axis=-1, keepdims=True)
    w2c = np.asarray(cam.look_at(eyes, rng.uniform(-0.2, 0.2, (n_cams, 3))), np.float64)
    K = np.zeros((n_cams, 3, 3))
    K[:, 0, 0] = rng.uniform(500, 1500, n_cams)
    K[:, 1, 1] = K[:, 0, 0] * rng.uniform(0.9, 1.1, n_cams)
    K[:, 0, 2] = rng.uniform(400, 600, n_cams)
    K[:, 1, 2] = rng.uniform(300, 500, n_cams)
    K[:, 2, 2] = 1.0
    points = rng.uniform(-0.7, 0.7, (n_points, 3))
    return K, w2c, points


def test_intrinsics_layout():
    K = np.asarray(cam.intrinsics(jnp.asarray([800.0, 1000.0]), 1920, 1080))
    np.testing.assert_array_equal(K[1], [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    assert K.shape == (2, 3, 3) and K.dtype == np.float32


def test_project_matches_cv2_project_points():
    K, w2c, points = _random_scene(0)
    pix, depth = jax.jit(cam.project)(jnp.asarray(points, jnp.float32)[None],
                                      jnp.asarray(K, jnp.float32), jnp.asarray(w2c, jnp.float32))
    for v in range(len(K)):
        rvec = cv2.Rodrigues(w2c[v, :3, :3])[0]
        ref = cv2.projectPoints(points, rvec, w2c[v, :3, 3], K[v], None)[0][:, 0]
        np.testing.assert_allclose(pix[v], ref, atol=1e-3)
        np.testing.assert_allclose(depth[v], points @ w2c[v, 2, :3] + w2c[v, 2, 3], atol=1e-5)


def test_pixels_to_rays_matches_cv2_undistort_points():
    K, _, _ = _random_scene(1)
    pix = np.random.default_rng(1).uniform(0, 1000, (len(K), 20, 2))
    rays = np.asarray(cam.pixels_to_rays(jnp.asarray(pix, jnp.float32), jnp.asarray(K, jnp.float32)))
    for v in range(len(K)):
        ref = cv2.undistortPoints(pix[v][:, None], K[v], None)[:, 0]
        np.testing.assert_allclose(rays[v], ref, atol=1e-6)


def test_backproject_inverts_project_with_skewed_intrinsics():
    K, w2c, points = _random_scene(2)
    K[:, 0, 1] = np.linspace(-5.0, 5.0, len(K))  # skew: pixels_to_rays must undo it exactly
    K, w2c, pts = (jnp.asarray(a, jnp.float32) for a in (K, w2c, points))
    pix, depth = cam.project(pts[None], K, w2c)
    back = cam.backproject(pix, depth, K, cam.invert_rigid(w2c))
    np.testing.assert_allclose(back, np.broadcast_to(points, back.shape), atol=1e-5)


def test_invert_rigid_matches_numpy_inverse():
    R = Rotation.random(5, random_state=3).as_matrix()
    t = np.random.default_rng(3).normal(size=(5, 3)) * 4
    T = cam.rigid(jnp.asarray(R, jnp.float32), jnp.asarray(t, jnp.float32))
    np.testing.assert_allclose(cam.invert_rigid(T), np.linalg.inv(np.asarray(T, np.float64)), atol=1e-6)


def test_look_at_axes_centre_and_up_direction():
    eye = jnp.asarray([[3.0, -2.0, 1.5], [0.5, 4.0, 0.2]])
    target = jnp.asarray([[0.0, 0.0, 1.0], [0.0, 0.0, 0.9]])
    w2c = cam.look_at(eye, target)
    R = np.asarray(w2c[:, :3, :3], np.float64)
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-6)
    forward = np.asarray(target - eye)
    np.testing.assert_allclose(R[:, 2], forward / np.linalg.norm(forward, axis=-1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(cam.invert_rigid(w2c)[:, :3, 3], eye, atol=1e-5)  # camera centre
    K = cam.intrinsics(jnp.asarray([1000.0, 1000.0]), 1920, 1080)
    above = target + jnp.asarray([0.0, 0.0, 0.1])  # world up must appear up (smaller y) in the image
    pix, _ = cam.project(jnp.stack([target, above], 1), K, w2c)
    np.testing.assert_allclose(pix[:, 0], [[960, 540], [960, 540]], atol=1e-3)
    assert np.all(pix[:, 1, 1] < pix[:, 0, 1])
    np.testing.assert_allclose(pix[:, 1, 0], 960, atol=1e-2)  # up is vertical: no roll


def _trajectory(seed, T=6):
    rng = np.random.default_rng(seed)
    R = Rotation.from_rotvec(rng.normal(size=(T, 3)) * 0.3).as_matrix()
    t = rng.normal(size=(T, 3))
    return np.asarray(cam.rigid(jnp.asarray(R, jnp.float32), jnp.asarray(t, jnp.float32)), np.float64)


def test_trajectory_features_definition_and_identity_first_frame():
    w2c = _trajectory(4)
    feats = np.asarray(cam.trajectory_features(jnp.asarray(w2c, jnp.float32), scale=2.0))
    np.testing.assert_allclose(feats[0], np.eye(4)[:3].reshape(12), atol=1e-6)
    ref = w2c @ np.linalg.inv(w2c[0])
    ref[:, :3, 3] /= 2.0
    np.testing.assert_allclose(feats, ref[:, :3].reshape(-1, 12), atol=1e-5)


def test_trajectory_features_invariant_to_world_frame_and_scale():
    w2c = _trajectory(5)
    G = np.eye(4)  # a global rigid change of world frame X_old = G X_new
    G[:3, :3] = Rotation.from_rotvec([0.4, -1.0, 2.0]).as_matrix()
    G[:3, 3] = [5.0, -3.0, 1.0]
    moved = w2c @ G
    lam = 3.5  # a global change of metric scale (SLAM): translations scale, so does d0
    scaled = w2c.copy()
    scaled[:, :3, 3] *= lam
    batch = jnp.asarray(np.stack([w2c, moved, scaled]), jnp.float32)
    feats = jax.jit(cam.trajectory_features)(batch, jnp.asarray([1.0, 1.0, lam]))
    assert feats.shape == (3, 6, 12)
    np.testing.assert_allclose(feats[1], feats[0], atol=1e-5)
    np.testing.assert_allclose(feats[2], feats[0], atol=1e-5)
