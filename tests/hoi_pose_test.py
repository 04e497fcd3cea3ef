"""Object pose recovery from 3D keypoints (anylift_jax.hoi.pose)."""
import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from anylift_jax.geometry.rotations import rot6d_to_matrix
from anylift_jax.hoi import metrics, pose
from anylift_jax.hoi.objects import load_category

CHAIR = load_category("chair")


def _rot6d(R):
    m = R.as_matrix()
    return np.concatenate([m[..., :, 0], m[..., :, 1]], -1)


def _trajectory(T, seed=0):
    """A smooth object motion: yaw ramp + small tilt, a curved path, one scale."""
    u = np.linspace(0.0, 1.0, T)
    rotvec = np.stack([0.2 * np.sin(3 * u), 0.1 * np.cos(2 * u), 2.0 * u], -1)
    R = Rotation.from_rotvec(rotvec) * Rotation.random(random_state=seed)
    t = np.stack([2.0 * u, np.sin(2 * u), 0.3 + 0.1 * u], -1)
    return R, t, 1.3


def _keypoints(R, t, s, P):
    return s * np.stack([R[i].apply(P) for i in range(len(R))]) + t[:, None]


def _errors(out, R, t, s):
    rot, trans, scale = metrics.pose_error(
        (out["object_rot6d"], out["object_transl"], out["object_scale"]),
        (_rot6d(R).astype(np.float32), t.astype(np.float32), np.float32(s)))
    return np.asarray(rot), np.asarray(trans), float(scale)


def test_exact_recovery_and_per_frame_rotations_match_scipy():
    R, t, s = _trajectory(12)
    P = CHAIR.keypoints.astype(np.float64)
    w = np.random.default_rng(0).uniform(0.2, 1.0, (12, CHAIR.num_keypoints))
    Q = _keypoints(R, t, s, P)
    out = pose.object_pose_from_keypoints(Q, w, "chair", sigma=0.0)
    assert out["object_rot6d"].shape == (12, 6) and out["object_transl"].shape == (12, 3)
    assert out["object_scale"].shape == ()
    rot, trans, scale = _errors(out, R, t, s)
    assert rot.max() < 0.05 and trans.max() < 0.05 and scale < 1e-3
    # With noise, each frame's rotation is scipy's weighted Kabsch (Wahba) solution.
    Qn = Q + np.random.default_rng(1).normal(0.0, 0.02, Q.shape)
    out = pose.object_pose_from_keypoints(Qn, w, CHAIR, sigma=0.0)
    for i in range(12):
        mp, mq = w[i] @ P / w[i].sum(), w[i] @ Qn[i] / w[i].sum()
        ref, _ = Rotation.align_vectors(Qn[i] - mq, P - mp, weights=w[i])
        got = Rotation.from_matrix(np.asarray(rot6d_to_matrix(out["object_rot6d"][i]),
                                              np.float64))
        assert (got.inv() * ref).magnitude() < 1e-4


def test_joint_scale_and_translation_are_the_least_squares_optimum():
    T = 4
    R, t, s = _trajectory(T, seed=3)
    P = CHAIR.keypoints.astype(np.float64)
    rng = np.random.default_rng(2)
    Q = _keypoints(R, t, s, P) + rng.normal(0.0, 0.03, (T, CHAIR.num_keypoints, 3))
    w = rng.uniform(0.1, 1.0, (T, CHAIR.num_keypoints))

    def residual(x):
        rv, tr, sc = x[:3 * T].reshape(T, 3), x[3 * T:6 * T].reshape(T, 3), x[-1]
        pred = sc * np.stack([Rotation.from_rotvec(rv[i]).apply(P) for i in range(T)]) + tr[:, None]
        return (np.sqrt(w)[..., None] * (pred - Q)).ravel()

    x0 = np.concatenate([(R * Rotation.from_rotvec([0.1, 0.0, 0.0])).as_rotvec().ravel(),
                         t.ravel() + 0.1, [1.0]])
    ref = least_squares(residual, x0, xtol=1e-12, ftol=1e-12, gtol=1e-12).x
    out = pose.object_pose_from_keypoints(Q, w, CHAIR, sigma=0.0)
    np.testing.assert_allclose(float(out["object_scale"]), ref[-1], rtol=1e-4)
    np.testing.assert_allclose(out["object_transl"], ref[3 * T:6 * T].reshape(T, 3), atol=1e-4)


def test_noisy_keypoints_smoothing_and_missing_data():
    T = 90
    R, t, s = _trajectory(T, seed=4)
    rng = np.random.default_rng(5)
    Q = _keypoints(R, t, s, CHAIR.keypoints.astype(np.float64))
    Q = Q + rng.normal(0.0, 0.01, Q.shape)  # 1 cm triangulation noise
    w = np.ones(Q.shape[:2])
    # Occluded keypoints carry garbage with weight 0; frame 40 has only two keypoints (no pose).
    hidden = rng.random(w.shape) < 0.2
    w[hidden], Q[hidden] = 0.0, 1e3
    w[40, 2:], Q[40, 2:] = 0.0, -1e3
    raw = _errors(pose.object_pose_from_keypoints(Q, w, CHAIR, sigma=0.0), R, t, s)
    smooth = _errors(pose.object_pose_from_keypoints(Q, w, CHAIR), R, t, s)
    frames = np.arange(T) != 40
    rot, trans, scale = smooth
    assert rot.mean() < 1.0 and trans.mean() < 6.0 and scale < 0.5
    assert rot[40] < 2.0 and trans[40] < 15.0  # filled in from its neighbours
    # Temporal smoothing reduces the per-frame error.
    assert rot[frames].mean() < 0.8 * raw[0][frames].mean()
    assert trans[frames].mean() < 0.8 * raw[1][frames].mean()


def test_smoothing_keeps_constant_velocity_motion_at_the_ends_and_across_gaps():
    T = 40
    t = np.arange(T, dtype=np.float32)
    x = np.stack([0.05 * t + 1.0, -0.02 * t, np.full(T, 0.3)], -1).astype(np.float32)
    c = np.ones(T, np.float32)
    c[10:14] = 0.0  # a gap
    c[-1] = 0.0     # a missing last frame
    np.testing.assert_allclose(pose.smooth(x, c, 2.0), x, atol=1e-4)
    # Noise is reduced: the std of white noise drops by about sqrt(2 sqrt(pi) sigma) inside.
    noise = np.random.default_rng(0).normal(0.0, 1.0, (2000, 1)).astype(np.float32)
    out = np.asarray(pose.smooth(noise, np.ones(2000, np.float32), 2.0))[20:-20]
    np.testing.assert_allclose(out.std(), 1.0 / np.sqrt(2 * np.sqrt(np.pi) * 2.0), rtol=0.1)
