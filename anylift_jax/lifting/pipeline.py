"""Batch lifting of keypoint archives to world-grounded 3D (Sec. 2.2, "Inference on Real-World
Videos"): the stages in order, per group of clips.

1. frames: each clip at the model's frame rate (`frames.resampled`) in the upright frame of its
   cameras (`frames.upright`).
2. windows + sampling: model-length windows, the other views sampled by the Stage-2 model and
   triangulated (`sampling.lift_keypoints`), averaged with the same for the mirror image
   (`frames.mirrored`).
3. depth: the steps after triangulation (`depth.depth_steps`).
4. body: the body model fitted to the keypoints (`body.fit_bodies`), objects' poses (`objects`).
5. quality: a per-frame confidence and a clip score (`quality`).
6. back into the archive's world and frames (`frames.to_clip_world`, `frames.to_source_rate`),
   one `<clip>.npz` per clip (docs/keypoint-archive.md).
"""
import dataclasses
import os
import sys
import time

import jax
import numpy as np
import tqdm

from anylift_jax import sharding, skeleton
from anylift_jax.data.mocap import mirror
from anylift_jax.hoi.pose import MIN_KEYPOINTS
from anylift_jax.io import archive
from anylift_jax.lifting import quality
from anylift_jax.lifting.body import fit_bodies
from anylift_jax.lifting.depth import depth_steps
from anylift_jax.lifting.frames import mirrored, resampled, to_clip_world, to_source_rate, upright
from anylift_jax.lifting.objects import object_pose, object_problem
from anylift_jax.lifting.sampling import lift_keypoints, make_lift_fn


def lift_archive(config, model, input_dir, output_dir, *, progress=True):
    """Lift every clip of an archive folder into `output_dir`; returns {done, skipped, failed,
    quality: {clip: score}, flagged: [clips below config.quality.flag_below]}.

    Resumable: clips whose output exists and validates are skipped. Clips are split across
    processes (`clips[process_index::process_count]`) so hosts write disjoint outputs. A clip that
    fails is reported (file and reason) and skipped; nothing partial is written.
    """
    from anylift_jax.body import model as body_model  # noqa: PLC0415

    cfg, graphdef, rest, params = model
    num_objects = cfg.model.get("num_object_keypoints", 0)
    warned = set()
    # Hosts lift disjoint clips, each at its own pace: a mesh of this host's devices only.
    mesh = sharding.make_mesh(jax.local_devices())
    params = jax.device_put(jax.device_get(params), sharding.replicated(mesh))
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    clips, errors = archive.read_archive(input_dir)
    failed = [(os.fspath(p), e) for p, e in errors]
    clips = clips[jax.process_index()::jax.process_count()]
    todo, skipped = [], 0
    for c in clips:
        path = os.path.join(output_dir, f"{c.clip_id}.npz")
        try:
            archive.validate_output(path)
            skipped += 1
        except archive.ArchiveError:
            problem = object_problem(c, num_objects, cfg.data.get("object_category"))
            if problem is not None:
                if problem not in warned:
                    print(f"warning: {c.clip_id}: {problem}", file=sys.stderr)
                    warned.add(problem)
                c = dataclasses.replace(c, object_keypoints=None, object_scores=None, object_category=None)
            todo.append(c)
    lift_fn = make_lift_fn(cfg, graphdef, rest, mesh, config.lift)
    body = body_model.get_body_model(config.body.name, config.body.path) if config.lift.fit_body else None
    key = jax.random.key(config.seed)
    done, scores = 0, {}
    bar = tqdm.tqdm(total=len(todo), unit="clip", disable=not progress or jax.process_index() != 0)
    t0 = time.perf_counter()
    for start in range(0, len(todo), config.lift.clips_per_batch):
        group = todo[start:start + config.lift.clips_per_batch]

        def stage(name, first=start + 1, last=start + len(group)):
            bar.set_description(f"clips {first}-{last}: {name}")

        outs = lift_group(config, cfg, group, lift_fn, params, mesh, body, jax.random.fold_in(key, start), stage)
        for c, out in zip(group, outs):
            try:
                archive.write_output(os.path.join(output_dir, f"{c.clip_id}.npz"), out)
                done += 1
                scores[c.clip_id] = float(out["quality"])
            except archive.ArchiveError as e:
                failed.append((c.clip_id, str(e)))
        bar.update(len(group))
        bar.set_postfix(clips_per_s=f"{(done + len(failed)) / (time.perf_counter() - t0):.2f}")
    bar.close()
    flagged = sorted(k for k, q in scores.items() if q < config.quality.flag_below)
    return {"done": done, "skipped": skipped, "failed": failed, "quality": scores, "flagged": flagged}


def lift_group(config, model_config, clips, lift_fn, params, mesh, body, key, stage=lambda name: None):
    """The output dicts (docs/keypoint-archive.md) of a group of clips lifted together: the
    stages of this module's docstring, in order, each announced by `stage(name)`."""
    lc = config.lift
    num_objects = model_config.model.get("num_object_keypoints", 0)
    T = model_config.data.num_frames
    source = [(c.num_frames, c.fps) for c in clips]
    same_rate = [abs(c.fps - lc.fps) <= 1e-3 * lc.fps for c in clips]
    group, turns = zip(*[upright(c if same else resampled(c, lc.fps)) for c, same in zip(clips, same_rate)])
    stage("sampling")
    triangulated = lift_keypoints(group, lift_fn, params, T, lc, mesh, key, num_objects)
    if lc.mirror_average and not num_objects:
        # Not for HOI models: their mirror pass lacks the object, and averaging it in moved the
        # body off the object (docs/results.md, "HOI").
        back = lift_keypoints([mirrored(c) for c in group], lift_fn, params, T, lc, mesh, jax.random.fold_in(key, 1))
        triangulated = [0.5 * (p + mirror(m)) for p, m in zip(triangulated, back)]
    stage("depth")
    points = [depth_steps(p, c, lc) for p, c in zip(triangulated, group)]
    kp3d = [p[:, :skeleton.NUM_JOINTS] for p in points]
    stage("body fit" if body is not None else "writing")
    fitted = fit_bodies(body, kp3d, group, lc.score_threshold, lc.fit_bucket, config.fit) if body is not None else None
    outs = []
    for i, c in enumerate(group):
        out = {"keypoints3d": kp3d[i], "body_model": np.str_("none")}
        fit_ok = fitted is not None and np.isfinite(fitted[i][0]).all() and all(
            np.isfinite(v).all() for v in fitted[i][1].values() if np.asarray(v).dtype.kind == "f")
        if fit_ok:
            out = {"keypoints3d": fitted[i][0], "body_model": np.str_(body.name)}
        elif fitted is not None:
            print(f"warning: {c.clip_id}: the body fit diverged; writing the lifted keypoints "
                  "without body parameters", file=sys.stderr)
        if c.object_keypoints is not None:
            pose = object_pose(points[i][:, skeleton.NUM_JOINTS:], c.object_scores > lc.score_threshold,
                               c.object_category, lc.hidden_object_weight)
            if pose is None:
                print(f"warning: {c.clip_id}: no object pose (no frame observes {MIN_KEYPOINTS} "
                      "object keypoints, or the fit degenerates)", file=sys.stderr)
            else:
                out.update(pose)
        conf = quality.confidence(quality.features(triangulated[i], points[i], c), config.quality)
        out.update(confidence=conf, quality=np.float32(conf.mean()))
        out = to_clip_world(out, turns[i], body if fit_ok else None, fitted[i][1] if fit_ok else None)
        outs.append(out if same_rate[i] else to_source_rate(out, *source[i], lc.fps))
    return outs
