"""The grain input pipeline: stored clips -> windows -> model-space training batches (docs/design.md).

Per host: records of each source (`store.StoreSource`) are split across hosts by index
(`ds[process_index::process_count]`, a partition), shuffled with a seed, repeated forever and, for
single-view data, mixed with the local-projection source X^proj at `config.data.proj_ratio`. Each
record then gets (seeded per element, so batches are a function of seed and position only):

1. a window of T = `config.data.num_frames` frames: a random crop of longer clips, shorter clips padded
   by repeating their last frame, `mask` = 0 on padding;
2. model-space normalisation from the window's first frame (`normalize.normalize`), camera
   features with d0 = the frame-0 camera-to-mid-hip distance (`normalize.camera_condition`);
3. single view: the line condition L for a random partner (`config.data.ring_partner_prob`: a
   camera of the Stage-2 ring, else an epipole uniform in [-r, r]², r = `config.data.epipole_range`);
4. joint masks: observed (score > 0); non-hip joints also need both hips in that frame (their
   local coordinates are offsets from the mid-hip); with probability `config.data.occlusion_prob`
   a random occlusion hides a random set of non-hip joints over a random span of frames.
   `x0` and `lines` are 0 wherever `joint_mask` is 0, everything is 0 on padding.

All of this is numpy (no jax in workers, which would claim the accelerator). Batches are dicts of
float32 arrays with the per-host batch size `config.data.batch_size // process_count`; `batch_spec`
gives the *global* shapes (B = `config.data.batch_size`) for building global arrays.
"""
import dataclasses
import functools
import sys
from pathlib import Path

import grain
from absl import flags
import jax
import numpy as np

from anylift_jax import skeleton
from anylift_jax.data import cameras
from anylift_jax.data import normalize as nz
from anylift_jax.data import store

KINDS = ("single_view", "multi_view")
# Store sub-directories per split written by `anylift_jax.data.build`.
SOURCES = {"single_view": ("global", "proj"), "multi_view": ("multiview",)}
_NON_HIP = np.array(skeleton.NON_HIP)


@dataclasses.dataclass(frozen=True)
class Augment:
    """Per-element settings of the pipeline (picklable for worker processes)."""
    window: int
    ring_views: int
    ring_partner_prob: float
    epipole_range: float
    occlusion_prob: float


def crop_window(record, T, rng):
    """Record dict -> (window dict with per-frame arrays of length T, mask (T,) float32).

    Per-record (0-d) values pass through. Longer clips are cropped at a random start, shorter ones
    padded with their last frame (cameras stay invertible), mask 0 there.
    """
    L = len(record["keypoints"])
    start = int(rng.integers(0, L - T + 1)) if L > T else 0
    n = min(L, T)
    idx = np.minimum(np.arange(T), n - 1) + start
    window = {k: v[idx] if v.ndim else v for k, v in record.items()}
    return window, (np.arange(T) < n).astype(np.float32)


def joint_mask(observed, mask, rng, occlusion_prob):
    """(T, K) bool observed, (T,) mask -> (T, K) bool: where the decomposed x0 is meaningful."""
    jm = observed & (mask[:, None] > 0)
    jm[:, _NON_HIP] &= (jm[:, skeleton.L_HIP] & jm[:, skeleton.R_HIP])[:, None]
    if rng.random() < occlusion_prob:
        T = len(jm)
        joints = _NON_HIP[rng.random(len(_NON_HIP)) < rng.uniform(0.1, 0.5)]
        a = int(rng.integers(0, T))
        b = int(rng.integers(a + 1, T + 1))
        jm[a:b, joints] = False
    return jm


def ring_partner_center(w2c0, pelvis0, views, rng):
    """Centre (3,) of a random non-input camera of the Stage-2 ring: `views` cameras on the
    horizontal circle through the frame-0 camera w2c0 (4, 4) around the frame-0 pelvis (3,)."""
    eye = nz.camera_centers(w2c0)
    offset = eye[:2] - pelvis0[:2]
    ring = cameras.ring(views, pelvis0, np.linalg.norm(offset), eye[2], np.arctan2(offset[1], offset[0]))
    return nz.camera_centers(ring[int(rng.integers(1, views))]).astype(np.float32)


def window_example(record, rng, aug):
    """Per-element stage (seeded): window, joint masks and the random line partner.

    Returns the window's keypoints, intrinsics, w2c (T, V, …), mask (T,), joint_mask (T, V, K)
    bool, observed (T, V, K) bool, pelvis0 (3,), is_proj, and for single-view data `partner`
    (3,) (a ring camera centre in world coordinates) or a model-space epipole, `use_ring` saying
    which.
    """
    w, mask = crop_window(record, aug.window, rng)
    observed = (w["scores"] > 0) & (mask[:, None, None] > 0)
    jm = np.stack([joint_mask(observed[:, v], mask, rng, aug.occlusion_prob)
                   for v in range(observed.shape[1])], 1)
    # Multi-view records carry the estimated pelvis track their ring follows (`build.input_rings`);
    # its frame 0, the ring's centre, not the true pelvis, scales the camera features, as at lifting.
    pelvis0 = (w["ring_center"][0] if "ring_center" in w else skeleton.mid_hip(w["kp3d"][0])).astype(np.float32)
    out = {"keypoints": w["keypoints"], "intrinsics": w["intrinsics"], "w2c": w["w2c"],
           "mask": mask, "observed": observed, "joint_mask": jm, "pelvis0": pelvis0,
           "is_proj": np.float32(w.get("is_proj", 0.0))}
    use_ring = rng.random() < aug.ring_partner_prob
    out["use_ring"] = np.bool_(use_ring)
    out["partner"] = (ring_partner_center(w["w2c"][0, 0], pelvis0, aug.ring_views, rng) if use_ring
                      else np.append(rng.uniform(-aug.epipole_range, aug.epipole_range, 2), 1.0)
                      .astype(np.float32))
    return out


def _views_first(a):
    return np.swapaxes(a, 1, 2)  # (B, T, V, …) -> (B, V, T, …)


def single_view_batch(b):
    """Batched stage, vectorised over B: model space, camera features, line condition."""
    pix, K, w2c = b["keypoints"][:, :, 0], b["intrinsics"][:, :, 0], b["w2c"][:, :, 0]
    jm, mask = b["joint_mask"][:, :, 0], b["mask"]
    x, params = nz.normalize(pix, K, b["observed"][:, :, 0])
    d0 = nz.camera_distance(w2c[:, 0], b["pelvis0"])
    ring = b["use_ring"][:, None, None]
    partner = np.broadcast_to(b["partner"][:, None], w2c.shape[:2] + (3,))
    e = np.where(ring, nz.epipole(w2c, partner, params), partner)
    lines = nz.condition_lines(x, e.astype(np.float32))
    return {
        "x0": np.where(jm[..., None], nz.decompose(x), 0.0).astype(np.float32),
        "cam": (nz.camera_condition(w2c, d0) * mask[..., None]).astype(np.float32),
        "lines": np.where(jm[..., None], lines, 0.0).astype(np.float32),
        "mask": mask,
        "joint_mask": jm.astype(np.float32),
        "is_proj": b["is_proj"],
    }


def multi_view_batch(b):
    """Batched stage for V views (view 0 the input), vectorised over B and V.

    docs/design.md "Several views": view 0 is normalised from its own keypoints (s₀, c₀); the
    ring views geometrically, with A_v = diag(s₀, s₀, 1) (they look at the estimated pelvis from the
    input camera's frame-0 distance, so c_v ≈ 0). Camera features are relative to the input view's
    frame-0 camera, translations divided by d₀.
    """
    pix, K, w2c = (_views_first(b[k]) for k in ("keypoints", "intrinsics", "w2c"))
    jm, mask = _views_first(b["joint_mask"]), b["mask"]
    x0, params0 = nz.normalize(pix[:, 0], K[:, 0], b["observed"][:, :, 0])
    ring = params0.scale[:, None, None, None, None] * nz.rays(pix[:, 1:], K[:, 1:])
    x = np.concatenate([x0[:, None], ring], 1)
    ref = w2c[:, 0, 0]
    d0 = nz.camera_distance(ref, b["pelvis0"])
    return {
        "x0": np.where(jm[..., None], nz.decompose(x), 0.0).astype(np.float32),
        "cam": (nz.camera_condition(w2c, d0[:, None], ref[:, None]) * mask[:, None, :, None])
        .astype(np.float32),
        "mask": mask,
        "joint_mask": jm.astype(np.float32),
    }


def batch_spec(config):
    """Global batch shapes: dict of jax.ShapeDtypeStruct (all float32)."""
    d, B, T, K = config.data, config.data.batch_size, config.data.num_frames, skeleton.NUM_JOINTS
    if d.kind == "single_view":
        shapes = {"x0": (B, T, K, 2), "cam": (B, T, 12), "lines": (B, T, K, 3), "mask": (B, T),
                  "joint_mask": (B, T, K), "is_proj": (B,)}
    else:
        V = d.views
        shapes = {"x0": (B, V, T, K, 2), "cam": (B, V, T, 12), "mask": (B, T),
                  "joint_mask": (B, V, T, K)}
    return {k: jax.ShapeDtypeStruct(s, np.float32) for k, s in shapes.items()}


def host_shard(source, process_index, process_count):
    """This host's records of a random-access source: every process_count-th from process_index."""
    ds = grain.MapDataset.source(source)[process_index::process_count]
    if not len(ds):
        raise ValueError(f"{source}: {len(source)} records cannot feed {process_count} hosts")
    return ds


class EpochShuffle(grain.MapDataset):
    """Endless stream of a finite MapDataset, each epoch in its own seeded permutation.

    Replaces `.shuffle(seed).repeat()`: grain 0.2.18's index_shuffle costs ~0.7 ms per element
    here, a cached numpy permutation ~1 µs. Deterministic in (seed, index); thread-safe (the cached
    (epoch, permutation) pair is replaced as a whole).
    """

    def __init__(self, parent, seed):
        super().__init__(parent)
        self._seed = seed
        self._n = len(parent)
        self._cache = (-1, None)

    def __len__(self):
        return sys.maxsize

    def __str__(self):
        return f"EpochShuffle(seed={self._seed})"

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        epoch, i = divmod(index, self._n)
        cached, perm = self._cache
        if cached != epoch:
            perm = np.random.default_rng([self._seed, epoch]).permutation(self._n)
            self._cache = (epoch, perm)
        return self._parents[0][int(perm[i])]


def _source(root, seed, process_index, process_count):
    return EpochShuffle(host_shard(store.StoreSource(root), process_index, process_count), seed)


def make_dataset(config, *, split, seed, process_index=0, process_count=1):
    """The per-host grain IterDataset of batches (see the module docstring)."""
    d = config.data
    if d.kind not in KINDS:
        raise ValueError(f"config.data.kind: expected one of {KINDS}, got {d.kind!r}")
    if d.batch_size % process_count:
        raise ValueError(f"config.data.batch_size {d.batch_size} is not divisible by "
                         f"{process_count} processes")
    root = Path(d.root) / split
    sources = [_source(root / name, seed + i, process_index, process_count)
               for i, name in enumerate(SOURCES[d.kind])]
    # line partners are single-view settings; multi-view configs do not define them
    aug = Augment(window=d.num_frames, ring_views=d.views, ring_partner_prob=d.get("ring_partner_prob", 0.0),
                  epipole_range=d.get("epipole_range", 0.0), occlusion_prob=d.occlusion_prob)
    if d.kind == "single_view":
        ds = grain.MapDataset.mix(sources, [1.0 - d.proj_ratio, d.proj_ratio])
    else:
        ds = sources[0]
    ds = ds.random_map(functools.partial(window_example, aug=aug), seed=seed)
    ds = ds.batch(d.batch_size // process_count, drop_remainder=True)
    ds = ds.map(single_view_batch if d.kind == "single_view" else multi_view_batch)
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=d.num_threads,
                                              prefetch_buffer_size=d.prefetch_batches))
    if d.num_workers:
        # grain's workers read absl flags; outside an absl app nobody has parsed them (defaults)
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=d.num_workers))
    return ds


def make_iterator(config, *, split="train", seed, process_index=None, process_count=None):
    """The trainer's entry point (`data.sources.SOURCES['pipeline']`): this host's batch iterator.

    config: ml_collections.ConfigDict with the `data` fields of configs/data/*.py.
    split: a sub-directory of `config.data.root` ("train" or "heldout"). The iterator is a grain
    DatasetIterator of per-host batches (dicts of float32 numpy arrays); its `get_state()` /
    `set_state()` (or grain.checkpoint with orbax) checkpoint and restore the position exactly.
    process_index / process_count default to jax.process_index() / jax.process_count().
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    ds = make_dataset(config, split=split, seed=seed, process_index=process_index,
                      process_count=process_count)
    return iter(ds)
