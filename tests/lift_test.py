"""Batch lifting (anylift_jax.lift): windows, blending, constant-size depth, world-frame
invariance and the CLI with the shipped model."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from anylift_jax import baselines, checkpoints, lifting, metrics, skeleton, views
from anylift_jax import config as config_lib
from anylift_jax import lift as lift_program
from anylift_jax.data import heldout, mocap
from anylift_jax.data.normalize import compose, decompose
from anylift_jax.io import archive
from opencv_reference import project_sequence


@pytest.mark.parametrize("T,length,overlap", [(10, 64, 16), (64, 64, 16), (65, 64, 16), (300, 64, 16), (97, 32, 8)])
def test_windows_cover_the_clip_with_the_overlap(T, length, overlap):
    starts = lifting.windows.window_starts(T, length, overlap)
    assert starts[0] == 0 and starts[-1] + length >= T
    assert all(b - a <= length - overlap for a, b in zip(starts, starts[1:]))


def test_blending_windows_reproduces_a_signal():
    """Cross-faded windows of a smooth signal give the signal back exactly (weights sum to one)."""
    T, length, overlap = 150, 64, 16
    signal = np.sin(np.linspace(0, 6, T))
    acc, wsum = np.zeros(T), np.zeros(T)
    ramp = lifting.windows.blend_weights(length, overlap)
    for s in lifting.windows.window_starts(T, length, overlap):
        idx = np.arange(s, s + length)
        acc[idx] += ramp * signal[idx]
        wsum[idx] += ramp
    np.testing.assert_allclose(acc / wsum, signal, atol=1e-12)


@pytest.fixture(scope="module")
def clip_and_truth():
    kp3d = mocap.load_shipped("amp_humanoid_hop")[:90]
    arrays = heldout.render_benchmark_clip(kp3d, "track", np.random.default_rng(0))
    return archive.clip_from_arrays("hop", arrays), kp3d


def test_constant_size_depth_undoes_a_depth_error_along_the_rays(clip_and_truth):
    """The true motion pushed along each frame's input rays by a slowly varying factor (its size
    and depth wrong together, its image unchanged) comes back up to one clip-wide factor."""
    clip, kp3d = clip_and_truth
    w2c = np.linalg.inv(clip.cam_c2w.astype(np.float64))
    cam = lambda k: np.einsum("tij,tkj->tki", w2c[:, :3, :3], k.astype(np.float64)) + w2c[:, None, :3, 3]
    world = lambda c: np.einsum("tji,tkj->tki", w2c[:, :3, :3], c - w2c[:, None, :3, 3])
    T = len(kp3d)
    factor = np.exp(0.15 * np.sin(2 * np.pi * np.arange(T) / T))[:, None, None]
    wrong = world(cam(kp3d) * factor)
    out = cam(lifting.depth.constant_size_depth(wrong, clip, sigma=1.0))
    # Every point stays on its ray: the input view's image is unchanged.
    np.testing.assert_allclose(out[..., :2] / out[..., 2:], cam(wrong)[..., :2] / cam(wrong)[..., 2:], atol=1e-6)
    ratio = out[..., 2] / cam(kp3d)[..., 2]
    assert (factor / factor.mean()).std() > 0.1  # the error put in: 10 % of depth
    assert ratio.std() / ratio.mean() < 2e-3  # what is left: one factor for the whole clip


@pytest.mark.parametrize("prior_weight", [0.0, 0.25, 1.0])
def test_size_prior_weight_blends_the_triangulated_size_with_the_prior(clip_and_truth, prior_weight):
    """The true motion scaled about each frame's camera centre by 0.8 and by 1.25 (size and depth
    wrong together): with prior weight α the two outputs differ by (0.8 / 1.25)^(1 − α), a
    geometric blend of the triangulated size and the prior's; α = 1 gives both the prior's size."""
    clip, kp3d = clip_and_truth
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)
    scaled = lambda k, c: eye + (k - eye) * c
    small, large = (lifting.depth.constant_size_depth(scaled(kp3d, c), clip, 5.0, prior_weight) for c in (0.8, 1.25))
    ratio = np.linalg.norm(small - eye, axis=-1) / np.linalg.norm(large - eye, axis=-1)
    np.testing.assert_allclose(ratio, (0.8 / 1.25) ** (1.0 - prior_weight), rtol=1e-4)
    # Points stay on their input rays.
    direction = lambda k: (k - eye) / np.linalg.norm(k - eye, axis=-1, keepdims=True)
    np.testing.assert_allclose(direction(small), direction(kp3d), atol=1e-5)


def test_prior_bone_lengths_are_the_default_anny_body():
    from anylift_jax.body.model import get_body_model
    body = get_body_model("anny")
    kp = np.asarray(body.keypoints(body.init_params((), 1)))[0]
    np.testing.assert_allclose([np.linalg.norm(kp[a] - kp[b]) for a, b in skeleton.BONES], lifting.depth.PRIOR_BONE_LENGTHS,
                               atol=6e-4)


def test_planted_feet_depth_reduces_a_depth_error_along_the_rays(clip_and_truth):
    """The true hops pushed along each frame's input rays by smooth random factors (1 % over ~4
    frames: the image unchanged, the planted feet sliding) come closer to the truth: the moving
    camera's parallax on the planted feet fixes how depth changes within each stance (measured:
    depth error 0.92 -> 0.62 %, foot sliding 9.0 -> 4.8 mm per frame, the truth's 3.7)."""
    clip, kp3d = clip_and_truth
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)
    noise = gaussian_filter1d(np.random.default_rng(1).normal(size=len(kp3d)), 4)
    factor = np.exp(0.01 * noise / noise.std())[:, None, None]
    wrong = eye + (kp3d - eye) * factor
    lc = config_lib.load(lifting.DEFAULT_CONFIG).lift
    planted = [lifting.depth.planted(k, clip.fps, lc.planted_speed, lc.planted_height) for k in (wrong, kp3d)]
    assert (planted[0] == planted[1]).mean() > 0.95
    out = lifting.depth.planted_feet_depth(wrong, clip, lc).astype(np.float64)
    assert np.abs(np.cross(out - eye, kp3d - eye)).max() < 1e-4  # every point stays on its input ray
    ratio = np.linalg.norm(out - eye, axis=-1) / np.linalg.norm(kp3d - eye, axis=-1)
    assert np.abs(ratio - 1).mean() < 0.8 * np.abs(factor - 1).mean()
    assert metrics.foot_sliding(out, kp3d) < 0.65 * metrics.foot_sliding(wrong, kp3d)


def test_track_depth_removes_frame_to_frame_depth_noise(clip_and_truth):
    """The true hops pushed along each frame's input rays by white noise (2 %: the image
    unchanged): the smoothed world track takes most of the noise out of the depth, every point
    stays on its input ray, and a motion without noise hardly moves (the track's own curvature;
    measured: depth error 1.56 -> 0.31 %, 0.28 % on the clean motion)."""
    clip, kp3d = clip_and_truth
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)
    factor = np.exp(0.02 * np.random.default_rng(2).normal(size=len(kp3d)))[:, None, None]
    wrong = eye + (kp3d - eye) * factor
    out = lifting.depth.track_depth(wrong, clip, 7.0).astype(np.float64)
    assert np.abs(np.cross(out - eye, wrong - eye)).max() < 1e-4
    ratio = lambda k: np.linalg.norm(k - eye, axis=-1) / np.linalg.norm(kp3d - eye, axis=-1)
    assert np.abs(ratio(out) - 1).mean() < 0.3 * np.abs(factor - 1).mean()
    assert np.abs(ratio(lifting.depth.track_depth(kp3d, clip, 7.0)) - 1).mean() < 0.25 * np.abs(factor - 1).mean()


def test_on_input_rays_puts_the_motion_back_on_the_detections(clip_and_truth):
    """The true motion shifted across the input camera's axes by a slowly varying offset, seen
    by exact detections (OpenCV's projection; a wrist never detected): the joints come back onto
    the detections' rays at their own camera depth, and the undetected wrist stays put."""
    clip, kp3d = clip_and_truth
    exact = dataclasses.replace(clip, keypoints=_project_cv2(kp3d, clip).astype(np.float32),
                                scores=np.ones_like(clip.scores))
    wrist = skeleton.INDEX["l_wrist"]
    exact.scores[:, wrist] = 0.0
    R, eye = clip.cam_c2w[:, :3, :3].astype(np.float64), clip.cam_c2w[:, None, :3, 3].astype(np.float64)
    T = len(kp3d)
    offset = 0.05 * np.stack([np.sin(np.arange(T) / 20), np.cos(np.arange(T) / 30), 0 * np.arange(T)], -1)
    wrong = kp3d + np.einsum("tij,tj->ti", R, offset)[:, None]
    out = lifting.depth.on_input_rays(wrong, exact, views.SCORE_THRESHOLD, sigma=2.0, min_score=0.1)
    depth = lambda k: np.einsum("tj,tkj->tk", R[:, :, 2], k - eye)
    np.testing.assert_allclose(depth(out), depth(wrong), atol=1e-6)
    seen = np.arange(17) != wrist
    np.testing.assert_allclose(_project_cv2(out, clip)[:, seen], exact.keypoints[:, seen], atol=1.0)  # pixels
    assert np.linalg.norm(out - kp3d, axis=-1)[:, seen].max() < 2e-3  # from 5 cm
    np.testing.assert_allclose(out[:, wrist], wrong[:, wrist], atol=1e-6)


def test_consistent_views_are_the_projections_of_one_motion(clip_and_truth):
    """`consistent` keeps the input view, keeps views that already agree (true projections into
    the ring), and turns disagreeing views into OpenCV's projections of their triangulation."""
    clip, kp3d = clip_and_truth
    w = lifting.windows.make_windows(0, clip, 32, 8, 0.5)[0]
    w2c_v, A, _ = lifting.sampling.ring_geometry(w.w2c, w.scale, w.center, w.track, 4)
    w2c_v, A = np.asarray(w2c_v, np.float64), np.asarray(A, np.float64)
    truth = np.stack([project_sequence(kp3d[w.frames], w2c_v[v], A[v]) for v in range(4)])[None]
    valid = np.ones((1, 32, 17), np.float32)
    args = dict(A=A[None], w2c_v=w2c_v[None], valid=valid, view_weight=0.1)
    x0 = decompose(truth)
    np.testing.assert_allclose(lifting.sampling.consistent(x0, **args), x0, atol=2e-4)
    noisy = x0 + np.random.default_rng(0).normal(0, 0.05, x0.shape) * (np.arange(4) > 0)[:, None, None, None]
    out = np.asarray(lifting.sampling.consistent(noisy, **args), np.float64)
    np.testing.assert_allclose(out[:, 0], noisy[:, 0], atol=1e-6)
    kp = np.asarray(lifting.sampling.triangulate_views(compose(noisy), A[None], w2c_v[None], valid, 0.1))[0]
    for v in range(1, 4):
        np.testing.assert_allclose(compose(out)[0, v], project_sequence(kp, w2c_v[v], A[v]), atol=2e-4)
    assert np.abs(out - noisy)[:, 1:].mean() > 0.02  # the disagreement was removed


def _lift_with_untrained_model(folder):
    """Lift the multi-host test's 5 clips with its random 2-view model: the summary."""
    from multihost_test import _write_archive
    from multihost_worker import lift_config, lift_model_config

    from anylift_jax import sharding, train
    folder.mkdir()
    _write_archive(folder / "archive")
    config, mesh = lift_model_config(), sharding.make_mesh()
    graphdef, rest, state, _ = train.init_state(config, mesh)
    return lifting.lift_archive(lift_config(), (config, graphdef, rest, state["ema"]), folder / "archive",
                             folder / "lifted", progress=False)


def test_an_untrained_two_view_model_lifts_every_clip_to_finite_keypoints(tmp_path):
    """A random 2-view model samples views unrelated to the input, and their triangulation can lie
    behind the opposite camera. On 8 devices all 5 clips came out nan before `consistent` kept
    such views' predictions; on one device (a subprocess) 2 did even without it, before
    `triangulate` kept the estimate of a point whose Gauss–Newton step overflowed float32."""
    summary = _lift_with_untrained_model(tmp_path / "eight")
    assert summary["failed"] == [] and summary["done"] == 5, summary
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import lift_test; "
            "print(json.dumps(lift_test._lift_with_untrained_model(Path(sys.argv[2]))))")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["failed"] == [] and summary["done"] == 5, summary


def _project_cv2(kp3d, clip):
    """OpenCV's projection (T, 17, 2) of world points through the clip's cameras."""
    return project_sequence(kp3d, np.linalg.inv(clip.cam_c2w.astype(np.float64)), clip.intrinsics)


def test_mirrored_clip_is_the_image_of_the_mirrored_motion(clip_and_truth):
    """The mirror image's keypoints are OpenCV's projection of the mirrored motion
    (`mocap.mirror`) through the mirror image's cameras, and mirroring twice gives the clip back."""
    clip, kp3d = clip_and_truth
    K = clip.intrinsics.copy()
    K[:, 0, 2] += 40.0  # an off-centre principal point: the flip must go through K
    exact = dataclasses.replace(clip, intrinsics=K, scores=np.ones_like(clip.scores))
    exact = dataclasses.replace(exact, keypoints=_project_cv2(kp3d, exact).astype(np.float32))
    m = lifting.frames.mirrored(exact)
    np.testing.assert_allclose(m.keypoints, _project_cv2(mocap.mirror(kp3d), m), atol=1e-2)
    assert np.abs(m.keypoints - exact.keypoints).max() > 100  # it did move
    twice = lifting.frames.mirrored(m)
    np.testing.assert_allclose(twice.keypoints, exact.keypoints, atol=1e-2)
    np.testing.assert_allclose(twice.cam_c2w, exact.cam_c2w, atol=1e-6)


def _turned(clip, seed):
    """The clip in a world turned and moved at random (a SLAM world: any frame), and the map (4, 4)."""
    from scipy.spatial.transform import Rotation
    M = np.eye(4)
    M[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    M[:3, 3] = np.random.default_rng(seed).normal(size=3)
    return dataclasses.replace(clip, cam_c2w=(M @ clip.cam_c2w).astype(np.float32)), M


def _lift_both(clip, tmp_path, fit_body):
    config = config_lib.load(lifting.DEFAULT_CONFIG)
    config.lift.fit_body = fit_body
    model = checkpoints.load_model(lifting.SHIPPED_MODEL)
    turned, M = _turned(clip, seed=4)
    outs = []
    for name, c in (("world", clip), ("turned", turned)):
        (tmp_path / name).mkdir()
        archive.write_clip(tmp_path / name / "hop.npz", c)
        assert lifting.lift_archive(config, model, tmp_path / name, tmp_path / f"{name}_out", progress=False)["done"] == 1
        outs.append(archive.validate_output(tmp_path / f"{name}_out" / "hop.npz"))
    return outs, M


def _assert_same_motion(a, b, M):
    """Outputs a (clip world) and b (world turned by M) describe the same motion: equal up to
    float32 rounding, which the sampler's 20 steps amplify to millimetres (without the upright
    frame the turned world's mean error is 38 cm)."""
    back = (b["keypoints3d"] - M[:3, 3]) @ M[:3, :3]
    dist = np.linalg.norm(back - a["keypoints3d"], axis=-1)
    assert dist.mean() < 0.02 and np.percentile(dist, 99) < 0.1, (dist.mean(), np.percentile(dist, 99))


def test_lifting_does_not_depend_on_the_world_frame(clip_and_truth, tmp_path):
    """The same clip in the Z-up world and in a SLAM-like world (turned, moved; MegaSaM writes the
    first camera's) lifts to the same motion: the ring is built in the cameras' upright frame."""
    clip, _ = clip_and_truth
    (a, b), M = _lift_both(clip, tmp_path, fit_body=False)
    _assert_same_motion(a, b, M)


@pytest.mark.slow
def test_fitted_bodies_come_back_to_the_clip_world(clip_and_truth, tmp_path):
    """With the body fit (default config), the written body parameters reproduce the written
    keypoints in the clip's own world, whatever that world is."""
    from anylift_jax.body import model as body_model
    clip, _ = clip_and_truth
    (a, b), M = _lift_both(clip, tmp_path, fit_body=True)
    body = body_model.get_body_model("anny")
    for out in (a, b):
        params = body.params_from_output(out)
        np.testing.assert_allclose(np.asarray(body.keypoints(params)), out["keypoints3d"], atol=1e-3)
    _assert_same_motion(a, b, M)


def test_object_pose_turns_back_with_the_world():
    from scipy.spatial.transform import Rotation
    from anylift_jax.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix
    rng = np.random.default_rng(0)
    R = Rotation.random(random_state=1).as_matrix().astype(np.float32)
    rot = Rotation.random(5, random_state=2).as_matrix().astype(np.float32)
    out = {"keypoints3d": rng.normal(size=(5, 17, 3)).astype(np.float32), "object_scale": np.float32(0.5),
           "object_rot6d": np.asarray(matrix_to_rot6d(rot)), "object_transl": rng.normal(size=(5, 3)).astype(np.float32)}
    P = rng.normal(size=(8, 3)).astype(np.float32)
    points = lambda o: 0.5 * np.einsum("tij,mj->tmi", np.asarray(rot6d_to_matrix(o["object_rot6d"])), P) + o["object_transl"][:, None]
    back = lifting.frames.to_clip_world(out, R)
    np.testing.assert_allclose(points(back), points(out) @ R, atol=1e-5)
    np.testing.assert_allclose(back["keypoints3d"], out["keypoints3d"] @ R, atol=1e-6)


def _config_file(tmp_path):
    path = tmp_path / "lift_nofit.py"
    path.write_text(
        "import importlib.util, os\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(lifting.DEFAULT_CONFIG)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "def get_config(arg=None):\n"
        "    c = m.get_config()\n"
        "    c.lift.fit_body = False\n"
        "    return c\n")
    return path


def test_cli_lifts_resumes_and_reports_bad_clips(clip_and_truth, tmp_path, capsys):
    clip, kp3d = clip_and_truth
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    archive.write_clip(inp / "hop.npz", clip)
    np.savez(inp / "broken.npz", keypoints=np.zeros((5, 17, 2)))
    args = ["--config", str(_config_file(tmp_path)), "--input", str(inp), "--output", str(out)]
    assert lift_program.main(args) == 1  # the broken clip failed
    captured = capsys.readouterr()
    assert "broken.npz" in captured.err and "done 1, skipped 0, failed 1, flagged" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["hop.npz"]  # nothing partial, no temp files
    pred = archive.validate_output(out / "hop.npz")["keypoints3d"]
    # The shipped model recovers the pose far better than fixed-depth back-projection.
    ours = float(np.mean(metrics.pa_mpjpe(pred, kp3d)))
    naive = float(np.mean(metrics.pa_mpjpe(baselines.backproject(clip), kp3d)))
    assert ours < 0.6 * naive, (ours, naive)
    assert lift_program.main(args) == 1
    assert "done 0, skipped 1, failed 1, flagged 0" in capsys.readouterr().out


def test_nonfinite_triangulation_is_filled_from_neighbouring_frames(clip_and_truth, capsys):
    """A window whose triangulation failed (nan) does not lose the clip: its frames take the
    nearest finite frame of each joint, and a joint never finite goes onto its input ray."""
    clip, kp3d = clip_and_truth
    points = kp3d.copy()
    points[20:30] = np.nan
    points[:, 0] = np.nan  # the nose is never triangulated
    out = lifting.depth.fill_nonfinite(points, clip)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:20, 1:], kp3d[:20, 1:])
    np.testing.assert_array_equal(out[22, 1:], kp3d[19, 1:])  # nearest finite frame before
    np.testing.assert_array_equal(out[27, 1:], kp3d[30, 1:])  # ... and after
    # The nose lies on its detection's ray: it projects onto the detected nose.
    pix = _project_cv2(out, clip)
    seen = clip.scores[:, 0] > 0.5
    assert np.median(np.linalg.norm(pix[seen, 0] - clip.keypoints[seen, 0], axis=-1)) < 1.0
    assert "not finite" in capsys.readouterr().err


def test_a_failing_step_falls_back_and_says_so(clip_and_truth, capsys):
    clip, kp3d = clip_and_truth
    out = lifting.depth._guarded("planted_feet", lambda p: p * np.nan, kp3d, clip)
    np.testing.assert_array_equal(out, kp3d)
    out = lifting.depth._guarded("track_depth", lambda p: np.linalg.inv(np.zeros((3, 3))), kp3d, clip)
    np.testing.assert_array_equal(out, kp3d)
    err = capsys.readouterr().err
    assert "hop: lifting step planted_feet gave non-finite values" in err and "track_depth failed" in err


@pytest.mark.parametrize("name", ["jump_127_23", "jump_88_08"])  # a dive roll; a flip backwards on the hands
def test_rolls_and_flips_lift_to_finite_plausible_motion(name, tmp_path):
    """Motions outside what the depth steps assume (the body upside down, lying on the ground)
    lift with the default steps and the shipped model: every clip written, finite, the pose
    better than fixed-depth back-projection."""
    from anylift_jax.data import corpus

    kp3d = corpus.load(name)[:150]
    kp3d = kp3d - np.append(skeleton.mid_hip(kp3d[0])[:2], 0.0).astype(np.float32)
    inp = tmp_path / "in"
    inp.mkdir()
    for kind in ("track", "static"):
        arrays = heldout.render_benchmark_clip(kp3d, kind, np.random.default_rng(1), image_size=(1920, 1080))
        archive.write_clip(inp / f"{kind}.npz", archive.clip_from_arrays(kind, arrays))
    config = _lift_config_no_fit()
    summary = lifting.lift_archive(config, checkpoints.load_model(lifting.SHIPPED_MODEL), inp, tmp_path / "out", progress=False)
    assert summary["done"] == 2 and not summary["failed"], summary
    for kind in ("track", "static"):
        pred = archive.validate_output(tmp_path / "out" / f"{kind}.npz")["keypoints3d"]
        assert np.isfinite(pred).all()
        clip = archive.read_clip(inp / f"{kind}.npz")
        ours = float(np.mean(metrics.pa_mpjpe(pred, kp3d)))
        naive = float(np.mean(metrics.pa_mpjpe(baselines.backproject(clip), kp3d)))
        assert ours < naive, (kind, ours, naive)


def _lift_config_no_fit():
    config = config_lib.load(lifting.DEFAULT_CONFIG)
    config.lift.fit_body = False
    return config


def test_quality_confidence_is_one_for_an_agreeing_lift_and_falls_with_each_sign(clip_and_truth):
    """The per-frame confidence of `lifting.quality`: near 1 where the limbs keep their length and
    the depth steps moved nothing; lower, in the frames concerned, as either sign grows."""
    clip, kp3d = clip_and_truth
    qc = config_lib.load(lifting.DEFAULT_CONFIG).quality
    kp = kp3d.astype(np.float64)
    feats = lifting.quality.features(kp, kp, clip)
    assert feats["shift"].max() < 1e-9
    base = lifting.quality.confidence(feats, qc)
    assert base.min() > 0.8  # the truth's limbs vary only by the mocap's own noise
    late = np.arange(len(kp)) >= 70  # a minority, so that the limbs' median lengths stay the early ones
    eye = clip.cam_c2w[:, None, :3, 3]
    pushed = kp + np.where(late[:, None, None], 0.5 * (kp - eye), 0.0)  # 1.5x as far and as large
    limbs = kp.copy()
    limbs[np.ix_(late, [7, 8, 13, 14])] += 0.25  # elbows and knees off their limbs: all eight change length
    for name, (tri, final) in {"shift": (kp, pushed), "bones": (kp, limbs)}.items():
        conf = lifting.quality.confidence(lifting.quality.features(tri, final, clip), qc)
        assert np.allclose(conf[~late], base[~late], atol=0.02), name
        assert (conf[late] < 0.6 * base[late]).all(), name


def test_resampling_to_another_frame_rate_and_back_keeps_the_shared_frames(clip_and_truth):
    """A 30 fps clip at 60 fps: every other frame is the original (keypoints, scores, cameras),
    the frames between lie between their neighbours with orthonormal camera rotations, and the
    outputs of the 60 fps clip come back at the 30 fps frames exactly."""
    clip, kp3d = clip_and_truth
    fast = lifting.frames.resampled(clip, 60.0)
    T = clip.num_frames
    assert fast.num_frames == 2 * T - 1 and fast.fps == 60.0
    np.testing.assert_allclose(fast.cam_c2w[::2], clip.cam_c2w, atol=1e-5)
    np.testing.assert_allclose(fast.intrinsics[::2], clip.intrinsics, atol=1e-3)
    seen = clip.scores > 0
    np.testing.assert_allclose(fast.keypoints[::2][seen], clip.keypoints[seen], atol=1e-3)
    np.testing.assert_array_equal(fast.scores[::2] > 0, seen)
    R = fast.cam_c2w[1::2, :3, :3].astype(np.float64)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    mid = 0.5 * (clip.cam_c2w[:-1, :3, 3] + clip.cam_c2w[1:, :3, 3])
    np.testing.assert_allclose(fast.cam_c2w[1::2, :3, 3], mid, atol=1e-5)
    both = seen[:-1] & seen[1:]
    np.testing.assert_allclose(fast.keypoints[1::2][both], 0.5 * (clip.keypoints[:-1] + clip.keypoints[1:])[both],
                               atol=1e-3)
    out = {"keypoints3d": np.repeat(kp3d, 2, 0)[:2 * T - 1], "quality": np.float32(0.5),
           "confidence": np.linspace(0, 1, 2 * T - 1).astype(np.float32), "body_model": np.str_("none")}
    out["keypoints3d"][::2] = kp3d
    back = lifting.frames.to_source_rate(out, T, 30.0, 60.0)
    np.testing.assert_allclose(back["keypoints3d"], kp3d, atol=1e-6)
    np.testing.assert_allclose(back["confidence"], out["confidence"][::2], atol=1e-6)
    assert back["quality"] == out["quality"] and back["body_model"] == out["body_model"]
    slow = lifting.frames.resampled(clip, 25.0)
    assert slow.num_frames == int((T - 1) * 25 / 30) + 1
    assert lifting.frames.to_source_rate({"keypoints3d": np.zeros((slow.num_frames, 17, 3))}, T, 30.0, 25.0)[
        "keypoints3d"].shape == (T, 17, 3)
