"""The held-out benchmark: shipped mocap clips never trained on, seen through moving hand-held cameras.

`build(out)` writes `out/archive/<clip>.npz` (keypoint archive v1, detector noise) and
`out/truth/<clip>.npz` (`keypoints3d` (T, 17, 3), `fps`), the inputs of `anylift_jax.lift` and
`anylift_jax.evaluate`. Each held-out motion is filmed by every camera kind in `KINDS`, all with
hand-held shake, at 1280×720 with a 45–75° horizontal field of view.

`build_hoi(out, category)` is the HOI counterpart: every held-out motion in every scenario of the
object category (`hoi.synth`), filmed the same way; the archive clips carry the object keypoints,
the truth adds the object pose, its category and the contact frames (the HOI metrics of evaluate).
"""
from pathlib import Path

import numpy as np

from anylift_jax.data import cameras, mocap, render2d
from anylift_jax.io import archive

IMAGE_SIZE = (1280, 720)
FOV_DEG = (45.0, 75.0)
# Tracking, a slow orbit and the Internet-video mix; shake is added to the first two explicitly.
KINDS = ("track", "orbit", "internet")


def render_benchmark_clip(kp3d, kind, rng, noise=render2d.NoiseConfig(), fps=30.0):
    """One archive clip dict (keypoint-archive keys) of kp3d (T, 17, 3) through a `kind` camera."""
    w2c = cameras.sample_trajectory(rng, kp3d, kind, fps)
    if kind != "internet":  # the Internet mix already shakes
        w2c = cameras.shake(rng, w2c, fps)
    K = cameras.sample_intrinsics(rng, *IMAGE_SIZE, FOV_DEG)
    return render2d.render_clip(kp3d, w2c, K, IMAGE_SIZE, rng, noise, fps)


def _output_dirs(out):
    """Create and return (out/archive, out/truth)."""
    dirs = Path(out) / "archive", Path(out) / "truth"
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def build(out, clips=mocap.HELDOUT, kinds=KINDS, seed=0, noise=render2d.NoiseConfig()):
    """Write the benchmark under `out`; returns (archive_dir, truth_dir)."""
    archive_dir, truth_dir = _output_dirs(out)
    rng = np.random.default_rng(seed)
    for name in clips:
        kp3d = mocap.load_shipped(name)
        for kind in kinds:
            clip_id = f"{name}__{kind}"
            arrays = render_benchmark_clip(kp3d, kind, rng, noise)
            archive.write_clip(archive_dir / f"{clip_id}.npz", archive.clip_from_arrays(clip_id, arrays))
            np.savez(truth_dir / f"{clip_id}.npz", keypoints3d=kp3d, fps=np.float64(30.0))
    return archive_dir, truth_dir


def build_hoi(out, category="box", clips=mocap.HELDOUT, kinds=KINDS, seed=0, noise=render2d.NoiseConfig()):
    """Write the HOI benchmark of `category` under `out`; returns (archive_dir, truth_dir)."""
    from anylift_jax.hoi import synth  # noqa: PLC0415  (hoi imports jax; the human benchmark needs none)

    archive_dir, truth_dir = _output_dirs(out)
    rng = np.random.default_rng(seed)
    for name in clips:
        for scenario in synth.scenarios_of(category):
            seq = synth.make_sequence(rng, mocap.load_shipped(name), scenario)
            for kind in kinds:
                clip_id = f"{name}__{scenario}__{kind}"
                w2c = cameras.sample_trajectory(rng, seq.kp3d, kind)
                if kind != "internet":
                    w2c = cameras.shake(rng, w2c)
                K = cameras.sample_intrinsics(rng, *IMAGE_SIZE, FOV_DEG)
                arrays = synth.render_hoi(seq, w2c, K, IMAGE_SIZE, rng, noise)
                archive.write_clip(archive_dir / f"{clip_id}.npz", archive.clip_from_arrays(clip_id, arrays))
                np.savez(truth_dir / f"{clip_id}.npz", keypoints3d=seq.kp3d, fps=np.float64(30.0),
                         object_rot6d=seq.object_rot6d, object_transl=seq.object_transl,
                         object_scale=seq.object_scale, object_category=np.str_(category),
                         contact=seq.contact.astype(np.float32))
    return archive_dir, truth_dir
