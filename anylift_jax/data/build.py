"""Build a training store: `python -m anylift_jax.data.build --config configs/data/<x>.py --out DIR`
(or a model config such as `configs/multi_view.py:corpus`; re-running resumes, complete shards are kept).

Writes DIR/<split>/<source>/ (`store` layout) for the splits of `splits(config)`: with
`config.data.corpus` the corpus' "train" clips (`data.corpus`; its "val" clips are judged by
lifting their benchmark, `data.benchmark`), otherwise the shipped
clips' "train" (`mocap.TRAIN`) and "heldout" (`mocap.HELDOUT`); then prints a summary. Sources:
- single_view: "global": each clip through `config.data.camera` trajectories with detector noise;
  "proj": X^proj, the clip re-centred (`normalize.recenter`) and projected without noise through
  a training trajectory taken relative to its subject (probability `proj_archive_prob`) or one of
  `normalize.predefined_trajectories`.
- multi_view: "multiview": windows of T frames, view 0 a moving camera, views 1..V-1 on the ring
  through the window's frame-0 camera around the pelvis, following it as lifting estimates it
  from the noisy input view (`input_rings`, docs/design.md "Several views"), noise from
  `config.data.noise`. With `config.data.object_category`
  set (HOI, Sec. 2.2), the motions interact with a scripted object of that category
  (`hoi.synth`) and each view holds K' = 17 + M keypoints, the object's M after the body's.
Every render is seeded by (seed, split, source, clip, render), so a shard's records do not depend
on which shards were built before.
"""
import argparse
import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from anylift_jax import config as config_lib
from anylift_jax import skeleton, views
from anylift_jax.data import cameras, corpus, mocap, render2d, store
from anylift_jax.data import normalize as nz
from anylift_jax.hoi import synth

SPLITS = {"train": mocap.TRAIN, "heldout": mocap.HELDOUT}


def splits(config):
    """{split: clip names} the store of `config` holds."""
    if config.data.get("corpus", False):
        return {"train": corpus.clips("train")}
    return SPLITS


def _rng(d, split, source, clip, render, stream):
    return np.random.default_rng([d.seed, list(SPLITS).index(split), source, clip, render, stream])


def _record(name, kp3d, views, is_proj=None, ring_center=None):
    """Store record from rendered archive dicts (one per view) of the motion kp3d (T, K, 3);
    ring_center (T, 3): the estimated pelvis track the ring of views 1..V-1 follows (`input_rings`)."""
    scores = np.stack([v["scores"] for v in views], 1)
    keypoints = np.stack([v["keypoints"] for v in views], 1)
    T = len(kp3d)
    record = {
        "name": name,
        "keypoints": np.where(scores[..., None] > 0, keypoints, 0.0).astype(np.float32),
        "scores": scores,
        "intrinsics": np.stack([np.broadcast_to(v["intrinsics"], (T, 3, 3)) for v in views], 1),
        "w2c": np.stack([cameras.invert_rigid(v["cam_c2w"]) for v in views], 1).astype(np.float32),
        "kp3d": kp3d.astype(np.float32),
    }
    if is_proj is not None:
        record["is_proj"] = np.float32(is_proj)
    if ring_center is not None:
        record["ring_center"] = np.asarray(ring_center, np.float32).reshape(T, 3)
    return record


_window_ring = jax.jit(views.window_ring, static_argnums=2)


def input_rings(kp3d, w2c, K, rng, noise, image_size, length, stride, num_views):
    """The input view of a motion kp3d (T, K, 3) filmed by the moving camera w2c (T, 4, 4), K
    (3, 3) with detector noise, cut into windows of `length` frames every `stride` frames, each
    with the ring of `num_views` lifting would place for it: yields (window slice, the window's
    input view (an archive dict), ring w2c (V, length, 4, 4) with view 0 the input camera, the
    estimated pelvis track the ring follows, in world coordinates (length, 3)).

    As in `lifting.windows.make_windows`, the track is the mid-hip ray at the depth the size prior gives
    from the noisy input (`views.subject_track`), not the true pelvis, and the ring is horizontal
    in the upright frame estimated from the cameras (`views.camera_up`), not the true one: at
    lifting no truth is known, so the model is trained on rings placed as they will be then. Only
    the 17 body joints enter the track and the normalisation.
    """
    view0 = render2d.render_clip(kp3d[:, :skeleton.NUM_JOINTS], w2c, K, image_size, rng, noise)
    L, T = len(kp3d), length
    Kt = np.broadcast_to(view0["intrinsics"], (L, 3, 3))
    observed = view0["scores"] > views.SCORE_THRESHOLD
    rays = nz.rays(view0["keypoints"], Kt)
    track = views.subject_track(rays, observed, views.subject_depths(rays, observed))
    # Lifting builds its rings in the cameras' upright frame (`lifting.frames.upright`), not the true one.
    up = np.eye(4)
    up[:3, :3] = views.up_rotation(views.camera_up(np.linalg.inv(w2c)))
    w2c_up = w2c @ up.T
    for start in range(0, max(L - T, 0) + 1, stride):
        win = slice(start, start + T)
        ring, pelvis, _ = _window_ring(w2c_up[win], track[win], num_views)
        view = {k: (v[win] if k in ("keypoints", "scores", "cam_c2w") or (k == "intrinsics" and v.ndim == 3) else v)
                for k, v in view0.items()}
        yield win, view, np.asarray(ring, np.float64) @ up, np.asarray(pelvis, np.float64) @ up[:3, :3]


class Builder:
    """Renders the records of one split of one config; every method is deterministic."""

    def __init__(self, config, split):
        self.d = config.data
        self.split = split
        self.clips = splits(config)[split]
        self.motions = {c: corpus.load(c) for c in self.clips}
        # Windows start every window_stride × category_stride[category] frames: the long dance
        # clips would otherwise fill most of the store.
        strides = config.data.get("category_stride", {})
        self.strides = [config.data.get("window_stride", 1) * strides.get(corpus.category(c), 1) for c in self.clips]
        self.noise = render2d.NoiseConfig(**self.d.noise)
        # Stage 2: the input view (view 0) sees detector noise as at lifting time; the other views
        # are the clean targets.
        self.input_noise = render2d.NoiseConfig(**self.d.get("input_noise", self.d.noise))

    def camera(self, c, r, kp3d=None):
        """The moving camera (w2c (T, 4, 4), K (3, 3)) of render r of clip index c (filming kp3d,
        by default the clip's motion). `config.data.camera` is a trajectory kind or several
        separated by commas, one drawn uniformly per render."""
        rng = _rng(self.d, self.split, 0, c, r, 0)
        K = cameras.sample_intrinsics(rng, *self.d.image_size, self.d.fov_range)
        kinds = self.d.camera.split(",")
        kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
        kp3d = self.motions[self.clips[c]] if kp3d is None else kp3d
        return cameras.sample_trajectory(rng, kp3d, kind), K

    def motion(self, c, r):
        """Motion (T, 17, 3) of render r of clip c: mirrored on odd renders when `config.data.mirror`,
        played at a speed drawn log-uniformly from `config.data.speed_range` (default 1)."""
        kp3d = self.motions[self.clips[c]]
        if self.d.get("mirror", False) and r % 2:
            kp3d = mocap.mirror(kp3d)
        lo, hi = self.d.get("speed_range", (1.0, 1.0))
        if hi > lo:
            speed = np.exp(_rng(self.d, self.split, 3, c, r, 0).uniform(np.log(lo), np.log(hi)))
            kp3d = mocap.retime(kp3d, speed)
        return kp3d

    def render(self, kp3d, w2c, K, rng, noise):
        return render2d.render_clip(kp3d, w2c, K, self.d.image_size, rng, noise)

    def input_rings(self, kp3d, w2c, K, rng, c):
        return input_rings(kp3d, w2c, K, rng, self.input_noise, self.d.image_size, self.d.num_frames,
                           self.strides[c], self.d.views)

    def global_records(self, c, r):
        kp3d = self.motions[self.clips[c]]
        w2c, K = self.camera(c, r)
        view = self.render(kp3d, w2c, K, _rng(self.d, self.split, 0, c, r, 1), self.noise)
        return [_record(f"{self.clips[c]}/global/{r}", kp3d, [view], is_proj=0.0)]

    def proj_records(self, c, r):
        rng = _rng(self.d, self.split, 1, c, r, 0)
        local = nz.recenter(self.motions[self.clips[c]])
        T = len(local)
        if rng.random() < self.d.proj_archive_prob:
            c2, r2 = int(rng.integers(len(self.clips))), int(rng.integers(self.d.renders_per_clip))
            w2c, K = self.camera(c2, r2)
            w2c = nz.subject_relative(w2c, skeleton.mid_hip(self.motions[self.clips[c2]]))
            # a random stretch of the other clip's trajectory, held still past its end
            start = int(rng.integers(max(len(w2c) - T, 0) + 1))
            w2c = w2c[np.minimum(start + np.arange(T), len(w2c) - 1)]
        else:
            trajs = nz.predefined_trajectories(local)
            w2c = trajs[list(trajs)[int(rng.integers(len(trajs)))]]
            K = cameras.sample_intrinsics(rng, *self.d.image_size, self.d.fov_range)
        view = self.render(local, w2c, K, rng, render2d.CLEAN)
        return [_record(f"{self.clips[c]}/proj/{r}", local, [view], is_proj=1.0)]

    def multiview_records(self, c, r):
        """Windows of `window` frames every `window_stride` frames of render r of clip c, each seen
        by the moving camera and by the ring lifting would place for it (`input_rings`), so the
        loader never crops these records."""
        kp3d = self.motion(c, r)
        w2c, K = self.camera(c, r, kp3d)
        rng = _rng(self.d, self.split, 2, c, r, 1)
        records = []
        for win, view0, ring, track in self.input_rings(kp3d, w2c, K, rng, c):
            kp = kp3d[win]
            rendered = [view0] + [self.render(kp, ring[v], K, rng, self.noise) for v in range(1, self.d.views)]
            records.append(_record(f"{self.clips[c]}/multiview/{r}/{win.start}", kp, rendered, ring_center=track))
        return records

    def hoi_records(self, c, r):
        """HOI windows (Sec. 2.2): as `multiview_records`, the motion of render r of clip c
        interacting with an object of `config.data.object_category` in a scenario of that category
        drawn per render (`hoi.synth`), filmed by the moving camera and by each window's ring.

        Views hold K' = 17 + M keypoints, the object's after the body's. The input view sees the
        object as a tracker would (`input_noise`; keypoints the object hides itself score 0); the
        ring views are the training targets and hold all M object keypoints, noise-free, hidden
        ones included (the paper's targets are reprojected HOI mocap). kp3d is (T, K', 3), and the
        object truth object_rot6d (T, 6), object_transl (T, 3), object_scale (), contact (T,)
        float32 comes along for evaluation.
        """
        rng = _rng(self.d, self.split, 4, c, r, 0)
        names = synth.scenarios_of(self.d.object_category)
        seq = synth.make_sequence(rng, self.motion(c, r), names[int(rng.integers(len(names)))])
        w2c, K = self.camera(c, r, seq.kp3d)
        rng = _rng(self.d, self.split, 4, c, r, 1)
        records = []
        for win, body0, ring, track in self.input_rings(seq.kp3d, w2c, K, rng, c):
            part = dataclasses.replace(
                seq, kp3d=seq.kp3d[win], object_rot6d=seq.object_rot6d[win],
                object_transl=seq.object_transl[win], object_kp3d=seq.object_kp3d[win],
                contact=seq.contact[win])
            kp, obj = part.kp3d, part.object_kp3d
            rendered = []
            for v, t in enumerate(ring):
                view = dict(body0) if v == 0 else self.render(kp, t, K, rng, self.noise)
                if v == 0:
                    o = synth.render_object(part, t, K, self.d.image_size, rng, self.input_noise)
                    o_pix, o_scores = o["object_keypoints"], o["object_scores"]
                else:
                    o_pix, _ = render2d.project(obj.astype(np.float64), t, K)
                    o_scores = render2d.inside(o_pix, self.d.image_size).astype(np.float32)
                view.update(keypoints=np.concatenate([view["keypoints"], o_pix], 1),
                            scores=np.concatenate([view["scores"], o_scores], 1))
                rendered.append(view)
            record = _record(f"{self.clips[c]}/hoi/{part.scenario}/{r}/{win.start}",
                             np.concatenate([kp, obj], 1), rendered, ring_center=track)
            record.update(object_rot6d=part.object_rot6d, object_transl=part.object_transl,
                          object_scale=part.object_scale, contact=part.contact.astype(np.float32))
            records.append(record)
        return records

    def sources(self):
        """{source name: (records of (clip, render) function, renders per clip)}."""
        if self.d.kind == "single_view":
            return {"global": (self.global_records, self.d.renders_per_clip),
                    "proj": (self.proj_records, self.d.proj_per_clip)}
        if self.d.get("object_category"):
            return {"multiview": (self.hoi_records, self.d.renders_per_clip)}
        return {"multiview": (self.multiview_records, self.d.renders_per_clip)}


def build(config, out, progress=True):
    """Build every split and source of `config` under `out`; returns {"split/source": index}."""
    summary = {}
    for split in splits(config):
        builder = Builder(config, split)
        for source, (make, per_clip) in builder.sources().items():
            jobs = [(c, r) for c in range(len(builder.clips)) for r in range(per_clip)]
            n = config.data.renders_per_shard
            num_shards = -(-len(jobs) // n)
            bar = (lambda it, s=f"{split}/{source}": tqdm(it, desc=s, unit="shard")) if progress else None
            summary[f"{split}/{source}"] = store.write_store(
                Path(out) / split / source, num_shards,
                lambda i: [rec for c, r in jobs[i * n:(i + 1) * n] for rec in make(c, r)],
                metadata={"config": json.loads(config.to_json()), "clips": list(builder.clips)},
                progress=bar)
    return summary


def format_summary(summary):
    rows = [f"{'store':<20} {'records':>7} {'frames':>8} {'views':>5} {'MB':>8}"]
    for name, index in summary.items():
        views = index["schema"]["keypoints"]["shape"][0]
        rows.append(f"{name:<20} {sum(index['records_per_shard']):>7} {index['frames']:>8} "
                    f"{views:>5} {index['bytes'] / 2**20:>8.2f}")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    config_lib.add_argument(parser, help="configs/data/<x>.py, or a model config (its data)")
    parser.add_argument("--out", required=True, help="store directory (config.data.root)")
    args = config_lib.parse(parser, argv)
    print(format_summary(build(args.config, args.out)))


if __name__ == "__main__":
    main()
