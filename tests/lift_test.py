"""Batch lifting (anylift_jax.lift): windows, blending, depth fusion and the CLI with the shipped model."""
import numpy as np
import pytest

from anylift_jax import baselines, lift, metrics, views
from anylift_jax.data import heldout, mocap
from anylift_jax.data.normalize import rays
from anylift_jax.io import archive


@pytest.mark.parametrize("T,length,overlap", [(10, 64, 16), (64, 64, 16), (65, 64, 16), (300, 64, 16), (97, 32, 8)])
def test_windows_cover_the_clip_with_the_overlap(T, length, overlap):
    starts = lift.window_starts(T, length, overlap)
    assert starts[0] == 0 and starts[-1] + length >= T
    assert all(b - a <= length - overlap for a, b in zip(starts, starts[1:]))


def test_blending_windows_reproduces_a_signal():
    """Cross-faded windows of a smooth signal give the signal back exactly (weights sum to one)."""
    T, length, overlap = 150, 64, 16
    signal = np.sin(np.linspace(0, 6, T))
    acc, wsum = np.zeros(T), np.zeros(T)
    ramp = lift.blend_weights(length, overlap)
    for s in lift.window_starts(T, length, overlap):
        idx = np.arange(s, s + length)
        acc[idx] += ramp * signal[idx]
        wsum[idx] += ramp
    np.testing.assert_allclose(acc / wsum, signal, atol=1e-12)


@pytest.fixture(scope="module")
def clip_and_truth():
    kp3d = mocap.load_shipped("amp_humanoid_hop")[:90]
    arrays = heldout.render_benchmark_clip(kp3d, "track", np.random.default_rng(0))
    return archive.clip_from_arrays("hop", arrays), kp3d


def test_fuse_root_depth_slides_the_body_along_the_root_ray(clip_and_truth):
    clip, kp3d = clip_and_truth
    assert lift.fuse_root_depth(kp3d, clip, 0.0, 0.3) is kp3d
    out = lift.fuse_root_depth(kp3d, clip, 0.5, 0.3)
    w2c = np.linalg.inv(clip.cam_c2w)
    cam = lambda k: np.einsum("tij,tkj->tki", w2c[:, :3, :3], k) + w2c[:, None, :3, 3]
    before, after = cam(kp3d.astype(np.float64)), cam(out.astype(np.float64))
    # A translation per frame (the pose is unchanged) along the ray through the root...
    shift = after - before
    np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1], shift.shape), atol=1e-4)
    root_b, root_a = before[:, 11:13].mean(1), after[:, 11:13].mean(1)
    np.testing.assert_allclose(root_a / root_a[:, 2:], root_b / root_b[:, 2:], atol=1e-5)
    # ... to the geometric mean of its depth and the size prior's, rescaled to its median.
    prior = views.subject_depths(rays(clip.keypoints, clip.intrinsics), clip.scores > 0.3)
    z = root_b[:, 2]
    want = np.sqrt(z * np.median(z / prior) * prior)
    np.testing.assert_allclose(root_a[:, 2], want, rtol=1e-4)


def _config_file(tmp_path):
    path = tmp_path / "lift_nofit.py"
    path.write_text(
        "import importlib.util, os\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(lift.DEFAULT_CONFIG)!r})\n"
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
    assert lift.main(args) == 1  # the broken clip failed
    captured = capsys.readouterr()
    assert "broken.npz" in captured.err and "done 1, skipped 0, failed 1" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["hop.npz"]  # nothing partial, no temp files
    pred = archive.validate_output(out / "hop.npz")["keypoints3d"]
    # The shipped model recovers the pose far better than fixed-depth back-projection.
    ours = float(np.mean(metrics.pa_mpjpe(pred, kp3d)))
    naive = float(np.mean(metrics.pa_mpjpe(baselines.backproject(clip), kp3d)))
    assert ours < 0.6 * naive, (ours, naive)
    assert lift.main(args) == 1
    assert "done 0, skipped 1, failed 1" in capsys.readouterr().out
