"""Model space: round trips, virtual intrinsics against OpenCV, line condition against F, X^proj."""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from anylift_jax import skeleton
from anylift_jax.data import cameras, mocap
from anylift_jax.data import normalize as nz
from anylift_jax.geometry import cameras as geo
from anylift_jax.geometry import epipolar


def _scene(seed, T=6, skew=3.0):
    """A shipped motion seen by a moving camera: 3D (T,K,3), w2c (T,4,4), K (T,3,3), pixels."""
    rng = np.random.default_rng(seed)
    kp3d = mocap.load_shipped("131_01")[40:40 + T]
    pel = skeleton.mid_hip(kp3d)
    ang = rng.uniform(0, 2 * np.pi) + 0.05 * np.arange(T)
    eye = pel + np.stack([4 * np.cos(ang), 4 * np.sin(ang), np.full(T, 0.6)], -1)
    w2c = np.asarray(geo.look_at(eye, pel + rng.normal(0, 0.2, (T, 3))), np.float32)
    K = np.array(geo.intrinsics(rng.uniform(800, 1500, T), 1280, 720), np.float32)
    K[:, 0, 1] = skew  # the inverse must not assume it away
    pix, depth = geo.project(kp3d, K, w2c)
    return kp3d, w2c, K, np.asarray(pix), np.asarray(depth)


def test_rays_match_opencv():
    _, _, K, pix, _ = _scene(0, skew=0.0)  # OpenCV's camera matrix has no skew
    for t in range(len(K)):
        ref = cv2.undistortPoints(pix[t].astype(np.float64)[:, None], K[t].astype(np.float64), None)[:, 0]
        np.testing.assert_allclose(nz.rays(pix[t], K[t]), ref, atol=1e-6)
    _, _, K, pix, _ = _scene(0)
    np.testing.assert_allclose(nz.rays(pix, K), geo.pixels_to_rays(pix, K), atol=1e-6)


def test_normalize_frame0_unit_box_and_exact_inverse():
    kp3d, w2c, K, pix, depth = _scene(1)
    valid = np.ones(pix.shape[:2], bool)
    x, params = nz.normalize(pix, K, valid)
    assert isinstance(x, np.ndarray) and x.dtype == np.float32
    np.testing.assert_allclose(skeleton.mid_hip(x[0]), 0.0, atol=1e-6)
    np.testing.assert_allclose((x[0].max(0) - x[0].min(0)).max(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(nz.denormalize(x, params, K), pix, atol=1e-3)
    # project / back-project with the known depth recovers the 3D points
    back = geo.backproject(nz.denormalize(x, params, K), depth, K, np.linalg.inv(w2c))
    np.testing.assert_allclose(back, kp3d, atol=1e-4)
    # the same under jit
    xj, pj = jax.jit(nz.normalize)(jnp.asarray(pix), jnp.asarray(K), jnp.asarray(valid))
    np.testing.assert_allclose(xj, x, atol=1e-5)
    np.testing.assert_allclose(jax.jit(nz.denormalize)(xj, pj, jnp.asarray(K)), pix, atol=1e-3)


def test_normalize_ignores_invalid_and_falls_back_to_first_frame_with_hips():
    _, _, K, pix, _ = _scene(2)
    valid = np.ones(pix.shape[:2], bool)
    valid[0, skeleton.R_HIP] = valid[1, skeleton.L_HIP] = False
    valid[2, 0] = False
    pix = pix.copy()
    pix[2, 0] = (1e5, -1e5)  # an invalid outlier must not enter the bounding box
    assert nz.reference_frame(valid) == 2
    x, params = nz.normalize(pix, K, valid)
    np.testing.assert_allclose(skeleton.mid_hip(x[2]), 0.0, atol=1e-6)
    side = (x[2, 1:].max(0) - x[2, 1:].min(0)).max()
    np.testing.assert_allclose(side, 1.0, rtol=1e-5)
    np.testing.assert_allclose(nz.denormalize(x, params, K), pix, rtol=1e-6, atol=1e-2)


def test_model_coordinates_are_pixels_of_virtual_camera_opencv():
    kp3d, w2c, K, pix, _ = _scene(3)
    x, params = nz.normalize(pix, K, np.ones(pix.shape[:2], bool))
    A = nz.model_intrinsics(params)
    np.testing.assert_allclose(A, epipolar.affine_intrinsics(params.scale, params.center), atol=1e-7)
    for t in range(len(K)):
        rvec, _ = cv2.Rodrigues(w2c[t, :3, :3].astype(np.float64))
        ref, _ = cv2.projectPoints(kp3d[t].astype(np.float64), rvec, w2c[t, :3, 3].astype(np.float64),
                                   A.astype(np.float64), None)
        np.testing.assert_allclose(x[t], ref[:, 0], atol=2e-5)


@pytest.mark.parametrize("lib", [np, jnp])
def test_decompose_compose_round_trip(lib):
    x = np.random.default_rng(4).normal(size=(3, 5, 17, 2)).astype(np.float32)
    d = nz.decompose(lib.asarray(x))
    assert type(d) is type(lib.asarray(x))
    np.testing.assert_array_equal(np.asarray(d)[..., skeleton.HIPS, :], x[..., skeleton.HIPS, :])
    mid = 0.5 * (x[..., 11, :] + x[..., 12, :])
    np.testing.assert_allclose(np.asarray(d)[..., 0, :], x[..., 0, :] - mid, atol=1e-6)
    np.testing.assert_allclose(nz.compose(d), x, atol=1e-6)
    np.testing.assert_allclose(jax.jit(nz.compose)(jax.jit(nz.decompose)(x)), x, atol=1e-6)


def test_condition_lines_are_epipolar_lines_of_the_partner_camera():
    kp3d, w2c, K, pix, _ = _scene(5)
    x, params = nz.normalize(pix, K, np.ones(pix.shape[:2], bool))
    # a static partner camera on the other side of the subject
    pel0 = skeleton.mid_hip(kp3d[0])
    w2c_b = np.asarray(geo.look_at(pel0 + np.array([-1.0, 3.5, 1.5]), pel0), np.float32)
    K_b = np.asarray(geo.intrinsics(1000.0, 1920, 1080), np.float32)
    e = nz.epipole(w2c, nz.camera_centers(w2c_b[None]), params)
    lines = nz.condition_lines(x, e)
    assert lines.shape == (len(x), 17, 3) and lines.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(lines[..., :2], axis=-1), 1.0, atol=1e-6)
    assert (lines[..., 0] >= 0).all()
    np.testing.assert_allclose(epipolar.point_line_distance(lines, x), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.einsum("tkc,tc->tk", lines, e), 0.0, atol=1e-5)
    # = the epipolar line in this view of the same joint seen by the partner: F x_b
    pix_b, _ = geo.project(kp3d, K_b, w2c_b)
    F = epipolar.fundamental(K_b, nz.model_intrinsics(params), epipolar.relative_pose(w2c_b, w2c))
    np.testing.assert_allclose(lines, epipolar.epipolar_lines(F, pix_b), atol=2e-4)
    np.testing.assert_allclose(lines, epipolar.lines_through_epipole(x, e), atol=1e-6)


def test_condition_lines_epipole_at_infinity_and_on_joint():
    x = np.array([[[0.5, 0.25], [0.0, 0.0]]], np.float32)
    lines = nz.condition_lines(x, np.array([1.0, 0.0, 0.0], np.float32))  # horizontal direction
    np.testing.assert_allclose(lines[0, 0], [0.0, 1.0, -0.25], atol=1e-7)
    lines = nz.condition_lines(x, np.array([0.0, 0.0, 1.0], np.float32))  # the epipole is joint 1
    np.testing.assert_array_equal(lines[0, 1], 0.0)


def test_camera_condition_is_trajectory_features():
    kp3d, w2c, _, _, _ = _scene(6)
    d0 = nz.camera_distance(w2c[0], skeleton.mid_hip(kp3d[0]))
    np.testing.assert_allclose(d0, 4.0, atol=0.3)
    c = nz.camera_condition(w2c, d0)
    np.testing.assert_allclose(c, geo.trajectory_features(w2c, d0), atol=1e-5)
    np.testing.assert_allclose(c[0], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(nz.camera_condition(w2c, d0, w2c[0]), c, atol=1e-6)
    # relative to another view's camera: E_t E_ref⁻¹
    ref = w2c[3]
    rel = w2c[1] @ np.linalg.inv(ref)
    got = nz.camera_condition(w2c, d0, ref)[1].reshape(3, 4)
    np.testing.assert_allclose(got, np.concatenate([rel[:3, :3], rel[:3, 3:] / d0], 1), atol=1e-5)


def test_recentred_motion_seen_by_subject_relative_cameras_projects_identically():
    kp3d, w2c, K, pix, _ = _scene(7, T=30)
    kp3d = mocap.load_shipped("131_01")[100:130]  # walking: the pelvis moves
    pix, _ = geo.project(kp3d, K, w2c)
    local = nz.recenter(kp3d)
    np.testing.assert_allclose(skeleton.mid_hip(local)[:, :2], 0.0, atol=1e-6)
    np.testing.assert_allclose(local[..., 2], kp3d[..., 2])
    pel = skeleton.mid_hip(kp3d)
    assert np.ptp(pel[:, 0]) + np.ptp(pel[:, 1]) > 0.3
    got, _ = geo.project(local, K, nz.subject_relative(w2c, pel))
    np.testing.assert_allclose(got, pix, atol=1e-2)


def test_predefined_trajectories_look_at_the_subject_from_around():
    local = nz.recenter(mocap.load_shipped("amp_humanoid_walk"))
    trajs = nz.predefined_trajectories(local)
    assert set(trajs) == {"front", "left", "back", "right", "orbit"}
    K = np.asarray(geo.intrinsics(1000.0, 1000, 1000))
    fwd = cameras.facing(local[0])
    # the face's nose lies ahead of the ears along the facing direction
    ahead = (local[:, 0] - local[:, 3:5].mean(1)) @ fwd
    assert (ahead > 0).mean() > 0.9
    for name, w2c in trajs.items():
        assert w2c.shape == (len(local), 4, 4) and w2c.dtype == np.float32
        pix, _ = geo.project(skeleton.mid_hip(local[:1])[None], K, w2c[:1])
        np.testing.assert_allclose(pix[0, 0], [500, 500], atol=1e-2)
        centre = nz.camera_centers(w2c)
        np.testing.assert_allclose(np.linalg.norm(centre[:, :2], axis=-1), nz.PROJ_DISTANCE, atol=1e-4)
    cos = nz.camera_centers(trajs["front"])[0, :2] @ fwd[:2] / nz.PROJ_DISTANCE
    np.testing.assert_allclose(cos, 1.0, atol=1e-5)
    orbit = nz.camera_centers(trajs["orbit"])
    step = np.arctan2(orbit[1, 1], orbit[1, 0]) - np.arctan2(orbit[0, 1], orbit[0, 0])
    np.testing.assert_allclose(step, nz.PROJ_ORBIT_SPEED / 30.0, atol=1e-5)


def test_batched_normalize_equals_per_clip():
    clips = [_scene(s) for s in (8, 9, 10)]
    pix = np.stack([c[3] for c in clips])
    K = np.stack([c[2] for c in clips])
    valid = np.ones(pix.shape[:3], bool)
    valid[1, 0, skeleton.L_HIP] = False  # clip 1 falls back to frame 1
    x, params = nz.normalize(pix, K, valid)
    for b in range(3):
        xb, pb = nz.normalize(pix[b], K[b], valid[b])
        np.testing.assert_allclose(x[b], xb, atol=1e-6)
        np.testing.assert_allclose(params.scale[b], pb.scale, rtol=1e-6)
    np.testing.assert_allclose(nz.denormalize(x, params, K), pix, atol=1e-3)
