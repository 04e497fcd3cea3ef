"""The held-out benchmarks: mocap never trained on, seen through moving hand-held cameras.

`build_split(out, split)` renders the corpus' validation ("val": chooses every default) or test
("test": run once per shipped model) clips (`data.corpus`): each clip cut into segments of at
most `SEGMENT` frames, each segment filmed by `CAMERAS_PER_SEGMENT[split]` camera families in turn
(`SPLIT_KINDS`: a hand-held camera following the person, a slow orbit, a tripod; all shaken) at 1920×1080 with detector noise,
dropouts and left/right swaps. Truth files add the clip's motion `category` and `clip` name, so
`evaluate` reports per category.

The old six-clip benchmark (`build`) is kept as one row of the tables:

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

from anylift_jax import skeleton
from anylift_jax.data import cameras, corpus, mocap, render2d
from anylift_jax.io import archive

IMAGE_SIZE = (1280, 720)
FOV_DEG = (45.0, 75.0)
# Tracking, a slow orbit and the Internet-video mix; shake is added to the first two explicitly.
KINDS = ("track", "orbit", "internet")
SPLIT_KINDS = ("track", "orbit", "static")
SPLIT_IMAGE_SIZE = (1920, 1080)
SEGMENT = 180  # frames (6 s) per benchmark clip; shorter clips whole
MIN_SEGMENT = 45  # a clip's last piece shorter than this joins the previous segment
# Validation is the smaller split and chooses every default: two cameras per segment.
CAMERAS_PER_SEGMENT = {"val": 2, "test": 1}


def render_benchmark_clip(kp3d, kind, rng, noise=render2d.NoiseConfig(), fps=30.0, image_size=IMAGE_SIZE):
    """One archive clip dict (keypoint-archive keys) of kp3d (T, 17, 3) through a `kind` camera."""
    w2c = cameras.sample_trajectory(rng, kp3d, kind, fps)
    if kind != "internet":  # the Internet mix already shakes
        w2c = cameras.shake(rng, w2c, fps)
    K = cameras.sample_intrinsics(rng, *image_size, FOV_DEG)
    return render2d.render_clip(kp3d, w2c, K, image_size, rng, noise, fps)


def segments(num_frames, length=SEGMENT, min_length=MIN_SEGMENT):
    """Slices cutting num_frames frames into consecutive pieces of `length` (the last one up to
    length + min_length)."""
    starts = list(range(0, max(num_frames - min_length, 1), length))
    ends = starts[1:] + [num_frames]
    return [slice(a, b) for a, b in zip(starts, ends)]


def build_split(out, split, seed=0, noise=render2d.NoiseConfig(), kinds=SPLIT_KINDS, fps=30.0):
    """Write the benchmark of a corpus split under `out`; returns (archive_dir, truth_dir). At
    another `fps` than the corpus' 30 the motions are resampled and the segments keep their
    duration: video at 25 or 60 fps."""
    archive_dir, truth_dir = _output_dirs(out)
    n = 0
    length, min_length = (round(x * fps / 30.0) for x in (SEGMENT, MIN_SEGMENT))
    for name in corpus.clips(split):
        kp3d = corpus.load(name) if fps == 30.0 else mocap.retime(corpus.load(name), 30.0 / fps)
        for seg in (s for s in segments(len(kp3d), length, min_length) for _ in range(CAMERAS_PER_SEGMENT[split])):
            rng = np.random.default_rng([seed, n])
            kind = kinds[n % len(kinds)]
            n += 1
            part = kp3d[seg] - np.append(skeleton.mid_hip(kp3d[seg][0])[:2], 0.0).astype(np.float32)
            clip_id = f"{name}__{seg.start:04d}__{kind}"
            arrays = render_benchmark_clip(part, kind, rng, noise, fps=fps, image_size=SPLIT_IMAGE_SIZE)
            archive.write_clip(archive_dir / f"{clip_id}.npz", archive.clip_from_arrays(clip_id, arrays))
            np.savez(truth_dir / f"{clip_id}.npz", keypoints3d=part, fps=np.float64(fps),
                     category=np.str_(corpus.category(name)), clip=np.str_(name))
    return archive_dir, truth_dir


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
