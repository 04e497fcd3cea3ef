"""Metrics against closed-form answers, numpy SVD Procrustes and scipy.spatial.procrustes."""
from importlib import resources

import numpy as np
import pytest
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation

from anylift_jax import metrics, skeleton
from anylift_jax.geometry import cameras


@pytest.fixture(scope="module")
def walk():
    """Real mocap: 131_02 (stylised walk), first 250 frames, (T, 17, 3) metres, Z up."""
    path = resources.files("anylift_jax") / "assets/mocap/131_02.npz"
    with np.load(path, allow_pickle=False) as f:
        return np.asarray(f["keypoints3d"][:250], np.float32)


def _similarity(kp, scale, rotvec, shift):
    R = Rotation.from_rotvec(rotvec).as_matrix()
    return (scale * kp @ R.T + np.asarray(shift)).astype(np.float32)


def test_similarity_copy_has_zero_aligned_errors_but_positive_mpjpe(walk):
    theta = 0.4
    pred = _similarity(walk, 1.3, [0.0, 0.0, theta], [1.0, -2.0, 0.5])
    for name in ("pa_mpjpe", "w_mpjpe", "wa_mpjpe"):
        err = np.asarray(getattr(metrics, name)(pred, walk))
        assert err.shape == (len(walk),), name
        assert err.max() < 0.5, name  # float32 SVD; the truth is 0
    assert float(metrics.pa_mpjpe_sequence(pred, walk)) < 0.5
    # The same pose turned about Z by θ (no scale): each joint moves by 2 sin(θ/2) times its
    # horizontal distance from the mid-hip, the closed form of MPJPE.
    turned = _similarity(walk, 1.0, [0.0, 0.0, theta], [0.0, 0.0, 0.0])
    rel = walk - skeleton.mid_hip(walk)[:, None]
    expected = 2 * np.sin(theta / 2) * np.linalg.norm(rel[..., :2], axis=-1).mean(-1) * 1000
    np.testing.assert_allclose(metrics.mpjpe(turned, walk), expected, rtol=1e-4)
    assert expected.min() > 20.0
    # RTE aligns rigidly, so a pure rotation + translation leaves no error but a scale does.
    assert float(np.max(metrics.rte(_similarity(walk, 1.0, [0, 0, theta], [3, 1, 0]), walk))) < 0.05
    assert float(np.mean(metrics.rte(pred, walk))) > 1.0


def test_offset_of_one_joint(walk):
    offset = np.array([0.003, 0.004, 0.012], np.float32)  # 13 mm
    pred = walk.copy()
    pred[:, skeleton.INDEX["nose"]] += offset
    np.testing.assert_allclose(metrics.mpjpe(pred, walk), 13.0 / 17, rtol=1e-3)
    # A constant offset of every joint is invisible after root alignment or any Procrustes.
    shifted = walk + np.array([0.5, -0.2, 0.1], np.float32)
    assert np.asarray(metrics.mpjpe(shifted, walk)).max() < 1e-3
    assert np.asarray(metrics.wa_mpjpe(shifted, walk)).max() < 0.5
    assert np.asarray(metrics.rte(shifted, walk)).max() < 0.05


def _procrustes_numpy(src, dst):
    """Textbook similarity Procrustes (Umeyama 1991) of one frame, written here with numpy."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.diag([1.0, 1.0, d])
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (a**2).sum()
    return s * a @ R.T + md


def test_pa_mpjpe_against_numpy_and_scipy(walk):
    rng = np.random.default_rng(0)
    truth = walk[:20].astype(np.float64)
    pred = _similarity(truth, 0.9, [0.3, -0.2, 1.0], [0.2, 0.1, 0.0])
    pred = pred + rng.normal(0, 0.03, truth.shape)
    pred = pred.astype(np.float32)
    ours = np.asarray(metrics.pa_mpjpe(pred, truth.astype(np.float32)))
    ref = np.array([np.linalg.norm(_procrustes_numpy(p, g) - g, axis=-1).mean() * 1000
                    for p, g in zip(pred.astype(np.float64), truth)])
    np.testing.assert_allclose(ours, ref, rtol=1e-3)
    assert ref.mean() > 20.0
    # scipy's disparity is the aligned squared residual over the truth's centred squared norm.
    for p, g in zip(pred.astype(np.float64), truth):
        _, _, disparity = scipy_procrustes(g, p)
        resid = ((_procrustes_numpy(p, g) - g) ** 2).sum() / ((g - g.mean(0)) ** 2).sum()
        np.testing.assert_allclose(resid, disparity, rtol=1e-6)
    # MVLift's variant fits one similarity to the whole clip: never better than per frame.
    seq = float(metrics.pa_mpjpe_sequence(pred, truth.astype(np.float32)))
    assert seq > ours.mean()


def test_segments_of_100_frames(walk):
    """A different similarity per 100-frame segment: W and WA vanish, one global fit does not."""
    pred = walk.copy()
    for k, start in enumerate(range(0, len(walk), metrics.SEGMENT)):
        seg = slice(start, start + metrics.SEGMENT)
        pred[seg] = _similarity(walk[seg], 1.0 + 0.1 * k, [0, 0, 0.5 * k], [k, 0.0, 0.0])
    assert np.asarray(metrics.w_mpjpe(pred, walk)).max() < 1.0
    assert np.asarray(metrics.wa_mpjpe(pred, walk)).max() < 1.0
    shifted = np.asarray(metrics.wa_mpjpe(pred[50:], walk[50:]))
    assert shifted.mean() > 100.0
    # A drift that starts after the first two frames: W (fitted on frames 0, 1) sees all of it,
    # WA spreads it, so W > WA while both are > 0.
    ramp = np.linspace(0, 0.5, len(walk), dtype=np.float32)[:, None, None]
    drift = walk + ramp * np.array([1, 0, 0], np.float32)
    w, wa = np.asarray(metrics.w_mpjpe(drift, walk)), np.asarray(metrics.wa_mpjpe(drift, walk))
    assert w.mean() > wa.mean() > 10.0


def test_batch_matches_single(walk):
    rng = np.random.default_rng(1)
    batch = np.stack([walk[:120], walk[100:220]])
    pred = (batch + rng.normal(0, 0.02, batch.shape)).astype(np.float32)
    for name in ("mpjpe", "pa_mpjpe", "pa_mpjpe_sequence", "w_mpjpe", "wa_mpjpe", "rte",
                 "foot_sliding"):
        fn = getattr(metrics, name)
        both = np.asarray(fn(pred, batch))
        for b in range(2):
            np.testing.assert_allclose(both[b], fn(pred[b], batch[b]), rtol=1e-4, atol=1e-4,
                                       err_msg=name)


def test_rte_straight_line_closed_form():
    """Truth root moves along x by Δ per frame; the prediction goes twice as far. After a rigid
    fit the error at frame t is |t − (T−1)/2| Δ, over a path of (T−1) Δ."""
    T, delta = 31, 0.05
    base = np.zeros((T, 17, 3), np.float32)
    base[:, :, 2] = np.linspace(0.1, 1.6, 17)
    base[:, skeleton.L_HIP, 1], base[:, skeleton.R_HIP, 1] = 0.1, -0.1
    truth = base.copy()
    truth[..., 0] += (np.arange(T) * delta)[:, None]
    pred = base.copy()
    pred[..., 0] += (np.arange(T) * 2 * delta)[:, None]
    t = np.arange(T)
    expected = np.abs(t - (T - 1) / 2) / (T - 1) * 100
    np.testing.assert_allclose(metrics.rte(pred, truth), expected, atol=1e-3)


def test_jitter_of_a_sinusoid():
    """Δ³ sin(a n) = −(2 sin(a/2))³ cos(a (n + 3/2)), exactly."""
    fps, amp, freq, T = 30.0, 0.05, 2.0, 60
    a = 2 * np.pi * freq / fps
    n = np.arange(T)
    kp = np.zeros((T, 17, 3), np.float64)
    kp[..., 1] = amp * np.sin(a * n)[:, None]
    expected = amp * (2 * np.sin(a / 2)) ** 3 * np.abs(np.cos(a * (n[:-3] + 1.5))) * fps**3 / 10
    np.testing.assert_allclose(metrics.jitter(kp.astype(np.float32), fps), expected,
                               rtol=2e-3, atol=2e-3)
    # Its mean is close to the continuous |x'''| = A ω³ |cos| averaged: A ω³ 2/π.
    omega = 2 * np.pi * freq
    assert abs(expected.mean() - amp * omega**3 * 2 / np.pi / 10) / expected.mean() < 0.05


def test_foot_sliding_at_known_speed(walk):
    T, fps, speed = 40, 30.0, 0.6  # m/s
    still = np.repeat(walk[:1], T, axis=0)
    # Ground the still pose so both ankles are within the contact height.
    still[..., 2] -= still[:, skeleton.ANKLES, 2].min()
    still[:, skeleton.ANKLES, 2] = 0.07
    assert np.asarray(metrics.foot_contact(still)).all()
    slide = still + (np.arange(T) * speed / fps)[:, None, None] * np.array([1, 0, 0], np.float32)
    np.testing.assert_allclose(float(metrics.foot_sliding(slide, still)), speed / fps * 1000,
                               rtol=1e-4)
    assert float(metrics.foot_sliding(still, still)) == 0.0
    # A still foot held 40 cm up is not in contact: its sliding does not count.
    lifted = still.copy()
    lifted[:, skeleton.ANKLES[0], 2] += 0.4
    contact = np.asarray(metrics.foot_contact(lifted))
    assert not contact[:, 0].any() and contact[:, 1].all()
    # Walking: each foot is planted for part of the gait cycle only.
    frac = np.asarray(metrics.foot_contact(walk)).mean()
    assert 0.1 < frac < 0.9


def test_bone_length_std(walk):
    assert np.asarray(metrics.bone_length_std(walk)).max() < 0.05  # mm; rigid mocap limbs
    rng = np.random.default_rng(2)
    factor = (1 + rng.normal(0, 0.02, len(walk))).astype(np.float32)
    root = skeleton.mid_hip(walk)[:, None]
    scaled = root + factor[:, None, None] * (walk - root)
    a, b = zip(*skeleton.LIMB_BONES)
    length = np.linalg.norm(walk[0, list(a)] - walk[0, list(b)], axis=-1)
    np.testing.assert_allclose(metrics.bone_length_std(scaled), length * factor.std() * 1000,
                               rtol=1e-3)


def test_reprojection_error(walk):
    T = 10
    kp3d = walk[:T]
    eye = np.tile([[3.0, -2.0, 1.5]], (T, 1)) + np.linspace(0, 1, T)[:, None] * [0, 1, 0]
    w2c = cameras.look_at(eye, np.tile([[0.0, 0.0, 0.9]], (T, 1)))
    K = cameras.intrinsics(1000.0, 1280, 720)
    c2w = np.asarray(cameras.invert_rigid(w2c))
    pix, _ = cameras.project(kp3d, K, w2c)
    pix = np.asarray(pix)
    assert float(metrics.reprojection_error(kp3d, pix, K, c2w)) < 1e-2
    off = pix + np.array([3.0, 4.0], np.float32)
    np.testing.assert_allclose(float(metrics.reprojection_error(kp3d, off, K, c2w)), 5.0,
                               rtol=1e-4)
    scores = np.ones((T, 17), np.float32)
    off[:, 0] = np.nan
    scores[:, 0] = 0.0
    np.testing.assert_allclose(
        float(metrics.reprojection_error(kp3d, off, np.tile(K, (T, 1, 1)), c2w, scores)), 5.0,
        rtol=1e-4)
