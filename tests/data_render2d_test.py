"""3D -> 2D rendering with detector-like noise (anylift_jax.data.render2d)."""
import numpy as np
import pytest
from scipy.stats import spearmanr

from anylift_jax import skeleton
from anylift_jax.data import cameras, mocap, render2d
from opencv_reference import project_sequence

W, H = 1280, 720
ARCHIVE_KEYS = {"keypoints", "scores", "intrinsics", "cam_c2w", "image_size", "fps"}
# COCO-17 with elbows, wrists, knees and ankles swapped left/right (torso and face kept).
LIMB_SWAP = np.array([0, 1, 2, 3, 4, 5, 6, 8, 7, 10, 9, 11, 12, 14, 13, 16, 15])


def _clip(kind="internet", seed=0, name="131_03"):
    kp = mocap.load_shipped(name)
    rng = np.random.default_rng(seed)
    w2c = cameras.sample_trajectory(rng, kp, kind)
    K = cameras.zoom(rng, cameras.sample_intrinsics(rng, W, H, (45.0, 75.0)), len(kp))
    return kp, w2c, K


def _static_scene(T, distance):
    """One standing pose repeated T times, seen by a static frontal camera `distance` m away."""
    pose = mocap.load_shipped("amp_humanoid_walk")[0]
    kp = np.broadcast_to(pose, (T, 17, 3)).copy()
    centre = skeleton.mid_hip(pose)
    eye = centre + distance * cameras.facing(pose)
    w2c = np.broadcast_to(cameras.look_at(eye, centre), (T, 4, 4)).copy()
    return kp, w2c, cameras.intrinsics(1000.0, W, H)


def test_clean_render_matches_opencv_and_archive_layout():
    kp, w2c, K = _clip()
    clip = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(0), render2d.CLEAN, fps=30.0)
    assert set(clip) == ARCHIVE_KEYS
    T = len(kp)
    assert clip["keypoints"].shape == (T, 17, 2) and clip["keypoints"].dtype == np.float32
    assert clip["scores"].shape == (T, 17) and clip["scores"].dtype == np.float32
    assert clip["intrinsics"].shape == (T, 3, 3) and clip["intrinsics"].dtype == np.float32
    assert clip["cam_c2w"].shape == (T, 4, 4) and clip["cam_c2w"].dtype == np.float32
    assert clip["image_size"].tolist() == [W, H] and clip["image_size"].dtype.kind == "i"
    assert clip["fps"].shape == () and float(clip["fps"]) == 30.0
    np.testing.assert_allclose(clip["cam_c2w"] @ w2c, np.broadcast_to(np.eye(4), (T, 4, 4)), atol=1e-5)
    ref = project_sequence(kp, w2c, K)
    np.testing.assert_allclose(clip["keypoints"], ref, atol=1e-2)
    in_image = ((ref >= 0) & (ref < [W, H])).all(-1)
    np.testing.assert_array_equal(clip["scores"], in_image.astype(np.float32))


def test_truncation_and_points_behind_the_camera():
    kp, w2c, K = _static_scene(4, 3.0)
    # Move the camera down and close so that the head leaves the image and put one frame's
    # camera inside the body so that part of it is behind the camera.
    w2c[:, 1, 3] += 0.6
    w2c[:, 2, 3] -= 1.5
    w2c[3, 2, 3] -= 1.6
    clip = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(0), render2d.NoiseConfig(), fps=30.0)
    pix, scores = clip["keypoints"], clip["scores"]
    depth = np.einsum("tj,tkj->tk", w2c[:, 2, :3], kp) + w2c[:, None, 2, 3]
    behind = depth <= render2d.NEAR
    assert behind.any() and (~behind).any()
    assert np.isnan(pix[behind]).all() and (scores[behind] == 0).all()
    outside = ~behind & ~((pix >= 0) & (pix < [W, H])).all(-1)
    assert outside.any()
    assert (scores[outside] == 0).all()
    seen = scores > 0
    assert ((pix[seen] >= 0) & (pix[seen] < [W, H])).all()


def test_noise_std_is_proportional_to_bbox():
    noise = render2d.NoiseConfig(sigma=0.02, dropout=0.0, swap=0.0)
    stds = []
    for distance in (3.0, 6.0):
        kp, w2c, K = _static_scene(1500, distance)
        clean = project_sequence(kp[:1], w2c[:1], K)[0]
        bbox = np.ptp(clean, axis=0).max()
        clip = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(1), noise)
        err = clip["keypoints"] - clean
        std = err.reshape(-1, 2).std(0)
        np.testing.assert_allclose(std / bbox, noise.sigma, rtol=0.03)
        np.testing.assert_allclose(err.reshape(-1, 2).mean(0) / bbox, 0.0, atol=0.002)
        stds.append(std.mean())
        # Confidence falls as the realised error grows.
        e = np.linalg.norm(err, axis=-1).ravel()
        s = clip["scores"].ravel()
        assert spearmanr(e, s).statistic < -0.999
        assert 0.8 < s.mean() < 0.95
    assert 1.7 < stds[0] / stds[1] < 2.3  # bbox halves when the distance doubles


def test_dropout_rate():
    kp, w2c, K = _static_scene(2000, 4.0)
    noise = render2d.NoiseConfig(sigma=0.0, dropout=0.1, swap=0.0)
    clip = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(2), noise)
    dropped = clip["scores"] == 0
    n = dropped.size
    assert abs(dropped.mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n)
    assert (clip["scores"][~dropped] == 1).all()


def test_limb_swaps():
    kp, w2c, K = _static_scene(2000, 4.0)
    clean = project_sequence(kp[:1], w2c[:1], K)[0]
    clip = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(3),
                                render2d.NoiseConfig(sigma=0.0, dropout=0.0, swap=1.0))
    np.testing.assert_allclose(clip["keypoints"], np.broadcast_to(clean[LIMB_SWAP], (2000, 17, 2)), atol=1e-2)
    clip = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(3),
                                render2d.NoiseConfig(sigma=0.0, dropout=0.0, swap=0.1))
    for joints in ((7, 9), (13, 15)):  # left elbow + wrist, left knee + ankle
        moved = np.linalg.norm(clip["keypoints"][:, joints] - clean[list(joints)], axis=-1) > 1.0
        np.testing.assert_array_equal(moved[:, 0], moved[:, 1])  # a limb swaps as a whole
        assert abs(moved[:, 0].mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(moved))
    # Torso and face never swap.
    np.testing.assert_allclose(clip["keypoints"][:, :7], np.broadcast_to(clean[:7], (2000, 7, 2)), atol=1e-2)


@pytest.mark.parametrize("kind", ["internet", "orbit"])
def test_determinism_per_seed(kind):
    kp, w2c, K = _clip(kind)
    noise = render2d.NoiseConfig(dropout=0.05, swap=0.05)
    a = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(5), noise)
    b = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(5), noise)
    c = render2d.render_clip(kp, w2c, K, (W, H), np.random.default_rng(6), noise)
    for key in ARCHIVE_KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    assert np.nanmax(np.abs(a["keypoints"] - c["keypoints"])) > 0.1


def test_bad_intrinsics_shape():
    kp, w2c, K = _clip()
    with pytest.raises(ValueError, match="intrinsics"):
        render2d.render_clip(kp, w2c, K[:3], (W, H), np.random.default_rng(0), render2d.CLEAN)
