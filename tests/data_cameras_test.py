"""Camera trajectory samplers (anylift_jax.data.cameras)."""
import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from anylift_jax import skeleton
from anylift_jax.data import cameras, mocap
from anylift_jax.geometry import cameras as gcam

W, H = 1280, 720
CLIPS = {name: mocap.load_shipped(name) for name in ("131_03", "amp_humanoid_run", "amp_humanoid_dance")}


def _centres(w2c):
    return cameras.invert_rigid(w2c)[..., :3, 3]


def _cv2_project(points, w2c, K):
    rvec, _ = cv2.Rodrigues(w2c[:3, :3].astype(np.float64))
    pix, _ = cv2.projectPoints(points.astype(np.float64), rvec, w2c[:3, 3].astype(np.float64),
                               K.astype(np.float64), None)
    return pix[:, 0]


def test_numpy_helpers_match_geometry_module():
    rng = np.random.default_rng(0)
    eye = rng.normal(size=(5, 3)) * 4
    target = rng.normal(size=(5, 3))
    np.testing.assert_allclose(cameras.look_at(eye, target), np.asarray(gcam.look_at(eye, target)), atol=1e-5)
    w2c = cameras.look_at(eye, target)
    np.testing.assert_allclose(cameras.invert_rigid(w2c), np.asarray(gcam.invert_rigid(w2c)), atol=1e-5)
    np.testing.assert_allclose(cameras.intrinsics([500.0, 800.0], W, H),
                               np.asarray(gcam.intrinsics(np.array([500.0, 800.0]), W, H)))


@pytest.mark.parametrize("views,start", [(4, 0.0), (6, 0.3)])
def test_ring_closed_form(views, start):
    center = np.array([0.5, -1.0, 0.9])
    radius, height = 3.0, 1.5
    w2c = cameras.ring(views, center, radius, height, start_angle=start)
    assert w2c.shape == (views, 4, 4) and w2c.dtype == np.float32
    eye = _centres(w2c)
    np.testing.assert_allclose(eye[:, 2], height, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(eye[:, :2] - center[:2], axis=-1), radius, atol=1e-5)
    az = np.arctan2(eye[:, 1] - center[1], eye[:, 0] - center[0])
    np.testing.assert_allclose(np.cos(az - start - 2 * np.pi * np.arange(views) / views), 1.0, atol=1e-6)
    K = cameras.intrinsics(1000.0, W, H)
    for v in range(views):
        # The centre projects to the principal point; the world up direction to image up.
        np.testing.assert_allclose(_cv2_project(center[None], w2c[v], K)[0], [W / 2, H / 2], atol=1e-3)
        above = _cv2_project((center + [0, 0, 0.1])[None], w2c[v], K)[0]
        assert above[1] < H / 2 and abs(above[0] - W / 2) < 1e-3


@pytest.mark.parametrize("kind", cameras.KINDS)
def test_trajectories_keep_subject_in_front_and_are_rigid(kind):
    for s, (name, kp) in enumerate(CLIPS.items()):
        for seed in range(4):
            w2c = cameras.sample_trajectory(np.random.default_rng(seed), kp, kind)
            assert w2c.shape == (len(kp), 4, 4) and w2c.dtype == np.float32
            R = w2c[:, :3, :3].astype(np.float64)
            np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
            np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
            np.testing.assert_array_equal(w2c[:, 3], np.broadcast_to([0, 0, 0, 1], (len(kp), 4)))
            depth = np.einsum("tj,tkj->tk", R[:, 2], kp) + w2c[:, None, 2, 3]
            assert depth.min() > 1.0, (name, seed)
            eye = _centres(w2c)
            assert (eye[:, 2] > cameras.HEIGHT[0] - 0.2).all() and (eye[:, 2] < cameras.HEIGHT[1] + 0.2).all()
            horiz = np.linalg.norm(eye[0, :2] - skeleton.mid_hip(kp[0])[:2])
            assert horiz > cameras.DISTANCE[0] - 0.2


def test_internet_video_front_hemisphere_and_in_image():
    inside, front = [], []
    for name, kp in CLIPS.items():
        face = cameras.facing(kp[0])
        for seed in range(12):
            rng = np.random.default_rng(seed)
            w2c = cameras.sample_trajectory(rng, kp, "internet")
            K = cameras.sample_intrinsics(rng, W, H, (45.0, 75.0))
            pc = np.einsum("tij,tkj->tki", w2c[:, :3, :3], kp) + w2c[:, None, :3, 3]
            pix = pc[..., :2] / pc[..., 2:] * K[0, 0] + K[:2, 2]
            inside.append(((pix >= 0) & (pix < [W, H])).all(-1).mean())
            front.append(np.dot(_centres(w2c)[0] - skeleton.mid_hip(kp[0]), face) > 0)
    assert np.mean(inside) > 0.97 and min(inside) > 0.8
    assert np.mean(front) > 0.9


def test_facing_closed_form():
    kp = mocap.load_shipped("amp_humanoid_walk")[0]
    for yaw in (0.0, 1.0, -2.5):
        R = Rotation.from_euler("z", yaw).as_matrix()
        np.testing.assert_allclose(cameras.facing(kp @ R.T), R @ cameras.facing(kp), atol=1e-5)
    # The walk clips move the way their subject faces.
    for name in ("amp_humanoid_walk", "amp_humanoid_run", "131_02"):
        kp = mocap.load_shipped(name)
        travel = skeleton.mid_hip(kp[-1]) - skeleton.mid_hip(kp[0])
        travel[2] = 0
        assert np.dot(cameras.facing(kp[0]), travel / np.linalg.norm(travel)) > 0.9, name


def test_determinism_per_seed():
    kp = CLIPS["131_03"]
    for kind in cameras.KINDS:
        a = cameras.sample_trajectory(np.random.default_rng(7), kp, kind)
        b = cameras.sample_trajectory(np.random.default_rng(7), kp, kind)
        c = cameras.sample_trajectory(np.random.default_rng(8), kp, kind)
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 1e-3, kind
    a = cameras.hemisphere(np.random.default_rng(1), np.zeros(3), 5)
    np.testing.assert_array_equal(a, cameras.hemisphere(np.random.default_rng(1), np.zeros(3), 5))
    with pytest.raises(ValueError, match="unknown camera trajectory kind 'drone'"):
        cameras.sample_trajectory(np.random.default_rng(0), kp, "drone")


def test_shake_is_small_and_smooth():
    T = 6000
    base = np.broadcast_to(cameras.look_at(np.array([4.0, 0, 1.5]), np.array([0, 0, 1.0])), (T, 4, 4))
    shaken = cameras.shake(np.random.default_rng(3), base, fps=30.0)
    delta = shaken @ cameras.invert_rigid(base)  # the perturbation [dR | dt] in the camera frame
    rot = np.rad2deg(Rotation.from_matrix(delta[:, :3, :3].astype(np.float64)).as_rotvec())
    trans = delta[:, :3, 3]
    # Per-axis std lies in the configured ranges (one amplitude per clip, shared by the axes).
    lo, hi = cameras.SHAKE_ROT_DEG
    assert (rot.std(0) > 0.85 * lo).all() and (rot.std(0) < 1.15 * hi).all()
    assert np.ptp(rot.std(0)) < 0.15 * rot.std()
    lo, hi = cameras.SHAKE_TRANS
    assert (trans.std(0) > 0.85 * lo).all() and (trans.std(0) < 1.15 * hi).all()
    # Low-pass: frame-to-frame changes are much smaller than the excursions.
    assert np.abs(np.diff(rot, axis=0)).std() < 0.35 * rot.std()


def test_intrinsics_and_zoom():
    rng = np.random.default_rng(0)
    fovs = []
    for _ in range(50):
        K = cameras.sample_intrinsics(rng, W, H, (40.0, 70.0))
        np.testing.assert_allclose(K[:2, 2], [W / 2, H / 2])
        assert K[0, 0] == K[1, 1]
        fovs.append(np.rad2deg(2 * np.arctan(W / 2 / K[0, 0])))
    assert 40.0 <= min(fovs) and max(fovs) <= 70.0 and np.ptp(fovs) > 20.0
    Ks = cameras.zoom(rng, K, 90)
    assert Ks.shape == (90, 3, 3)
    np.testing.assert_allclose(Ks[0], K)
    np.testing.assert_allclose(Ks[:, :2, 2], np.broadcast_to(K[:2, 2], (90, 2)))
    ratio = Ks[:, 0, 0] / K[0, 0]
    assert 1 / cameras.ZOOM_RATIO - 1e-6 <= ratio.min() and ratio.max() <= cameras.ZOOM_RATIO + 1e-6
    assert (np.diff(ratio) >= 0).all() or (np.diff(ratio) <= 0).all()


def test_hemisphere_ranges():
    center = np.array([1.0, 2.0, 0.9])
    w2c = cameras.hemisphere(np.random.default_rng(0), center, 200, distance=(2.0, 5.0), elevation_deg=(0.0, 45.0))
    off = _centres(w2c) - center
    dist = np.linalg.norm(off, axis=-1)
    elev = np.rad2deg(np.arcsin(off[:, 2] / dist))
    assert dist.min() > 2.0 - 1e-4 and dist.max() < 5.0 + 1e-4
    assert elev.min() > -1e-3 and elev.max() < 45.0 + 1e-3
    # Every camera looks at the centre (its optical axis passes through it).
    np.testing.assert_allclose(np.einsum("vj,vj->v", w2c[:, 2, :3], -off), dist, rtol=1e-5)
    az = np.arctan2(off[:, 1], off[:, 0])
    assert np.histogram(az, bins=4, range=(-np.pi, np.pi))[0].min() > 30
