"""Stage 1 end to end (Sec. 2.1): `python -m anylift_jax.synthesize --config configs/synth/<x>.py --workdir DIR`.

Steps, each resumable (finished work under DIR is kept and skipped):
1. inputs: a keypoint archive (v1) of single-view clips of one motion category — given
   (`config.inputs.archive`) or rendered from a shipped mocap clip through front-facing "Internet
   video" cameras with detector noise into DIR/inputs;
2. the single-view prior (DIR/prior, through `anylift_jax.train`), trained on the hybrid source
   of Eq. 4: the archive's global 2D motion (full loss + line loss) mixed with local projections
   X^proj of other categories' 3D mocap seen from anywhere (hip-masked loss, no line loss);
3. SDS (Eq. 5–6, `anylift_jax.sds`) of V − 1 ring views for every T-frame window of every clip,
   triangulation, body fit (`anylift_jax.body.fit.fit3d`), rejection of windows whose reprojection
   error or bone-length variation is too large; one DIR/motions/<clip>.npz per clip;
4. the multi-view store DIR/store (`data.store` format, read by the Stage-2 loader): every accepted
   motion reprojected into V_out evenly spaced ring cameras around a moving input camera, several
   camera draws per motion.
Clips are split across processes and, within a batch, across devices. `--evaluate` (inputs
rendered from mocap only) then compares the recovered 3D motion with the truth against single-view
baselines and SDS without line losses, and writes DIR/evaluation.json.
"""
import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from absl import logging as absl_logging
from flax import nnx

from anylift_jax import config as config_lib
from anylift_jax import baselines, checkpoints, lifting, metrics, sds, sharding, train
from anylift_jax.data import build, cameras, mocap, render2d, stage1, store
from anylift_jax.data import normalize as nz
from anylift_jax.diffusion.schedules import make_schedule
from anylift_jax.geometry import triangulate as tri
from anylift_jax.io import archive

# The prior's data source (config.prior.data.name), a key of data.sources.SOURCES.
PRIOR_SOURCE = "stage1_hybrid"


# ------------------------------------------------------------------------------------------ inputs
def render_inputs(config, out):
    """Render `config.inputs.renders` front-facing clips of `config.inputs.category` into the archive
    folder `out` (files that exist are kept). Returns `out`."""
    c = config.inputs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kp3d = mocap.load_shipped(c.category)
    for r in range(c.renders):
        clip_id = f"{c.category}_{r:03d}"
        path = out / f"{clip_id}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng([config.seed, r])
        K = cameras.sample_intrinsics(rng, *c.image_size, c.fov_range)
        w2c = cameras.sample_trajectory(rng, kp3d, c.camera)
        arrays = render2d.render_clip(kp3d, w2c, K, c.image_size, rng, render2d.NoiseConfig(**c.noise))
        arrays["keypoints"] = np.where(arrays["scores"][..., None] > 0, arrays["keypoints"], 0.0)
        archive.write_clip(path, archive.clip_from_arrays(clip_id, arrays))
    return out


# ----------------------------------------------------------------------------------------- prior
def prior_config(config, archive_dir):
    p = config.prior.copy_and_resolve_references()
    p.data.archive = os.fspath(archive_dir)
    return p


def train_prior(config, archive_dir, workdir):
    """Train (or resume) the Stage-1 prior in `workdir`; returns (prior config, graphdef, rest, params)."""
    p = prior_config(config, archive_dir)
    train.train(p, os.fspath(workdir))
    return (p, *checkpoints.load_model(workdir)[1:])


# ------------------------------------------------------------------------------------------- SDS
def sds_config(config):
    s = config.sds
    return sds.SDSConfig(iterations=s.iterations, learning_rate=s.learning_rate, line_weight=s.line_weight,
                         n_min=s.n_min, n_max=s.n_max, anneal_floor=s.anneal_floor, init=s.init)


def prior_denoiser(graphdef, rest):
    """denoise(params, x_n, n, cam, lines, mask) -> X̂_0 of the single-view prior, dropout off."""
    def denoise(params, x_n, n, cam, lines, mask):
        model = nnx.merge(graphdef, params, rest)
        model.eval()
        return model(x_n, n, cam, lines, mask)
    return denoise


def _local_rows(x):
    """This process's rows (in order) of a global array sharded on its leading axis."""
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return np.concatenate([np.asarray(s.data) for s in shards])


def reprojection_error(kp3d, out):
    """Mean model-space reprojection error (B,) of kp3d (B, T, K, 3) into the SDS views `out`,
    weighted like the triangulation (input joints where observed, ring joints everywhere)."""
    xg = np.swapaxes(np.asarray(nz.compose(out["views"])), 1, 2)  # (B, T, V, K, 2)
    B, T, V = xg.shape[:3]
    A = np.broadcast_to(out["A"][:, None], (B, T, V, 3, 3))
    err = np.asarray(tri.reprojection_error(jnp.asarray(kp3d), xg, A, np.swapaxes(out["w2c"], 1, 2)))
    w = np.concatenate([out["valid"][:, :, None], np.ones((B, T, V - 1, xg.shape[3]))], 2)
    w = w * out["mask"][:, :, None, None]
    return (err * w).sum((1, 2, 3)) / np.maximum(w.sum((1, 2, 3)), 1.0)


def synthesize_motions(config, clips, model, out_dir, sds_cfg, *, fit_body=True, progress=True):
    """SDS + triangulation (+ body fit) of every window of `clips`; one `out_dir/<clip>.npz` each.

    model: (prior config, graphdef, rest, params). Clips are split across processes; clips whose
    file exists are skipped. A clip file holds, per window (W of them): frames (W, T), mask (W, T),
    views (W, V, T, K, 2), w2c (W, V, T, 4, 4), A (W, V, 3, 3), kp3d_tri and kp3d (W, T, K, 3)
    (kp3d fitted when `fit_body`), error (W,) model-space reprojection error of kp3d, bone_std
    (W,) mm, accepted (W,) bool, sds and line (W,) final loss values.
    Returns the number of windows processed.
    """
    pcfg, graphdef, rest, params = model
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    T = pcfg.data.num_frames
    mine = list(enumerate(clips))[jax.process_index()::jax.process_count()]
    todo = [(i, c) for i, c in mine if not (out_dir / f"{c.clip_id}.npz").exists()]
    wins = [w for i, c in todo for w in lifting.windows.make_windows(i, c, T, 0, config.inputs.score_threshold)]
    mesh = sharding.make_mesh()
    local_devices = jax.local_device_count()
    per_batch = -(-config.sds.clips_per_batch // local_devices) * local_devices
    batches = -(-len(wins) // per_batch)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # noqa: PLC0415
        batches = int(np.max(multihost_utils.process_allgather(np.int32(batches))))
    fn = sds.make_batch_fn(prior_denoiser(graphdef, rest), make_schedule(pcfg.diffusion.schedule,
                           pcfg.diffusion.num_steps), sds_cfg, config.sds.views, config.sds.ring_weight, mesh)
    body = None
    if fit_body:
        from anylift_jax.body import fit as body_fit  # noqa: PLC0415  (the body stack loads only when fitting)
        from anylift_jax.body import model as body_model  # noqa: PLC0415
        body = body_model.get_body_model(config.fit.body, config.fit.path)
    results = {}
    remaining = {c.clip_id: sum(w.clip == i for w in wins) for i, c in todo}
    bar = tqdm.tqdm(total=len(wins), unit="window", disable=not progress or jax.process_index() != 0)
    for b in range(batches):
        chunk = wins[b * per_batch:(b + 1) * per_batch]
        real = len(chunk)
        # Fixed batch shape (one compilation); a process out of windows still joins the jit.
        filler = chunk[-1] if chunk else wins[-1] if wins else lifting.windows.make_windows(
            0, clips[0], T, 0, config.inputs.score_threshold)[0]
        chunk = chunk + [filler] * (per_batch - real)
        arrays = {f: np.stack([getattr(w, f) for w in chunk]) for f in ("x", "valid", "mask", "w2c", "scale", "center")}
        seeds = np.array([w.clip * 100_003 + int(w.frames[0]) for w in chunk], np.int32)
        t0 = time.perf_counter()
        out = fn(params, sharding.shard_batch(arrays, mesh), sharding.shard_batch(seeds, mesh))
        out = {k: _local_rows(v)[:real] for k, v in out.items()}
        out.update(valid=arrays["valid"][:real], mask=arrays["mask"][:real])
        if not real:
            continue
        kp3d = out["kp3d"]
        if fit_body:  # padded frames weigh 0
            weights = np.broadcast_to(out["mask"][..., None], kp3d.shape[:-1]).astype(np.float32)
            kp3d = np.asarray(body_fit.fit3d(body, jnp.asarray(kp3d), jnp.asarray(weights))["keypoints"])
        error = reprojection_error(kp3d, out)
        bone = np.array([np.asarray(metrics.bone_length_std(k[m > 0])).mean() for k, m in zip(kp3d, out["mask"])])
        accepted = (error <= config.reject.max_error) & (bone <= config.reject.max_bone_std)
        for j, w in enumerate(chunk[:real]):
            cid = clips[w.clip].clip_id
            results.setdefault(cid, []).append({
                "frames": w.frames, "mask": w.mask, "views": out["views"][j], "w2c": out["w2c"][j],
                "A": out["A"][j], "kp3d_tri": out["kp3d"][j], "kp3d": kp3d[j], "error": error[j],
                "bone_std": bone[j], "accepted": accepted[j], "sds": out["sds"][j, -1], "line": out["line"][j, -1]})
            remaining[cid] -= 1
            if remaining[cid] == 0:
                rows = results.pop(cid)
                archive.atomic_savez(out_dir / f"{cid}.npz", {k: np.stack([r[k] for r in rows]) for k in rows[0]})
        bar.update(real)
        bar.set_postfix(windows_per_s=f"{real / (time.perf_counter() - t0):.2f}", rejected=int((~accepted).sum()))
    bar.close()
    return len(wins)


def load_motions(folder, clips):
    """{clip_id: dict of arrays} of the motion files of `clips` in `folder`."""
    out = {}
    for c in clips:
        with np.load(Path(folder) / f"{c.clip_id}.npz") as f:
            out[c.clip_id] = {k: f[k] for k in f.files}
    return out


# ----------------------------------------------------------------------------------------- store
def multiview_record(name, kp3d, w2c, K, num_views, image_size, rng, noise):
    """Store record of motion kp3d (T, K, 3) seen by the moving camera w2c (T, 4, 4) (view 0) and
    by V − 1 cameras completing a ring of V at the frame-0 camera's distance and height around
    the pelvis, following it as lifting estimates it (`build.input_rings`, docs/design.md
    "Several views")."""
    T = len(kp3d)
    (_, view0, ring, track), = build.input_rings(kp3d, w2c, K, rng, noise, image_size, T, T, num_views)
    rendered = [view0] + [render2d.render_clip(kp3d, ring[v], K, image_size, rng, noise) for v in range(1, num_views)]
    return build._record(name, kp3d, rendered, ring_center=track)


def write_multiview_store(config, clips, motion_dir, out, progress=True):
    """The Stage-2 store at `out` from the accepted windows of the motion files (resumable by
    shard); None when no window was accepted."""
    o = config.output
    motions = load_motions(motion_dir, clips)
    jobs = [(ci, wi) for ci, c in enumerate(clips) for wi in np.flatnonzero(motions[c.clip_id]["accepted"])]
    if not jobs:
        return None
    n = o.windows_per_shard
    noise = render2d.NoiseConfig(**o.noise)

    def make_shard(s):
        records = []
        for ci, wi in jobs[s * n:(s + 1) * n]:
            m = motions[clips[ci].clip_id]
            kp = m["kp3d"][wi][m["mask"][wi] > 0].astype(np.float32)
            start = int(m["frames"][wi][0])
            for r in range(o.renders):
                rng = np.random.default_rng([config.seed, 1, ci, start, r])
                K = cameras.sample_intrinsics(rng, *o.image_size, o.fov_range)
                w2c = cameras.sample_trajectory(rng, kp, o.camera)
                records.append(multiview_record(f"{clips[ci].clip_id}/{start}/{r}", kp, w2c, K, o.views,
                                                o.image_size, rng, noise))
        return records

    bar = (lambda it: tqdm.tqdm(it, desc="store", unit="shard")) if progress else None
    return store.write_store(out, -(-len(jobs) // n), make_shard,
                             metadata={"config": json.loads(config.to_json()),
                                       "clips": [c.clip_id for c in clips]}, progress=bar)


# ------------------------------------------------------------------------------------------- run
def inputs_dir(config, workdir):
    return Path(config.inputs.archive) if config.inputs.archive else render_inputs(config, Path(workdir) / "inputs")


def prior(config, workdir, archive_dir):
    """The trained prior: from `config.prior_dir` when set, else trained (or resumed) in DIR/prior."""
    if config.prior_dir:
        p = prior_config(config, archive_dir)
        return (p, *checkpoints.load_model(config.prior_dir)[1:])
    return train_prior(config, archive_dir, Path(workdir) / "prior")


def run(config, workdir, progress=True):
    """Steps 1–4 of the module docstring; returns a summary dict (also written to DIR/summary.json)."""
    workdir = Path(workdir)
    archive_dir = inputs_dir(config, workdir)
    clips = stage1.read_inputs(archive_dir)
    model = prior(config, workdir, archive_dir)
    synthesize_motions(config, clips, model, workdir / "motions", sds_config(config),
                       fit_body=config.fit.enabled, progress=progress)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # noqa: PLC0415
        multihost_utils.sync_global_devices("anylift_jax.synthesize: motions written")
    motions = load_motions(workdir / "motions", clips)
    acc = np.concatenate([m["accepted"] for m in motions.values()])
    err = np.concatenate([m["error"] for m in motions.values()])
    bone = np.concatenate([m["bone_std"] for m in motions.values()])
    summary = {"clips": len(clips), "windows": int(acc.size), "accepted": int(acc.sum()),
               "rejected_error": int((err > config.reject.max_error).sum()),
               "rejected_bone_std": int((bone > config.reject.max_bone_std).sum())}
    if jax.process_index() == 0:
        index = write_multiview_store(config, clips, workdir / "motions", workdir / "store", progress)
        summary["store_records"] = sum(index["records_per_shard"]) if index else 0
        (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


# -------------------------------------------------------------------------------------- evaluate
def _scores(pred, truth):
    """{'pa_mpjpe', 'wa_mpjpe'} mm, means over the real frames of windows pred, truth (W, T, K, 3)
    given as lists of (T_w, K, 3)."""
    pa = np.concatenate([np.asarray(metrics.pa_mpjpe(p, g)) for p, g in zip(pred, truth)])
    wa = np.concatenate([np.asarray(metrics.wa_mpjpe(p, g)) for p, g in zip(pred, truth)])
    return {"pa_mpjpe": float(pa.mean()), "wa_mpjpe": float(wa.mean())}


def evaluate(config, workdir, progress=True):
    """The acceptance table of docs/stage1.md: 3D recovery of the rendered category (needs inputs
    rendered from mocap) by SDS + triangulation (+ fit) against single-view baselines and SDS
    without line losses. Writes DIR/evaluation.json; returns {method: {metric: mm}}."""
    from anylift_jax.body import fit, model as body_model  # noqa: PLC0415

    if config.inputs.archive:
        raise ValueError("--evaluate needs inputs rendered from mocap (config.inputs.archive = '')")
    workdir = Path(workdir)
    archive_dir = inputs_dir(config, workdir)
    clips = stage1.read_inputs(archive_dir)
    model = prior(config, workdir, archive_dir)
    truth_all = mocap.load_shipped(config.inputs.category)
    variants = {"sds": sds_config(config), "sds_no_line": dataclasses.replace(sds_config(config), line_weight=0.0)}
    table = {}
    for name, cfg in variants.items():
        folder = workdir / ("motions" if name == "sds" else f"eval_{name}")
        synthesize_motions(config, clips, model, folder, cfg, fit_body=config.fit.enabled, progress=progress)
        m = load_motions(folder, clips)
        rows = [(mm, w) for mm in m.values() for w in range(len(mm["frames"]))]
        real = [mm["mask"][w] > 0 for mm, w in rows]
        truth = [truth_all[mm["frames"][w][r]] for (mm, w), r in zip(rows, real)]
        table[f"{name} + triangulation"] = _scores([mm["kp3d_tri"][w][r] for (mm, w), r in zip(rows, real)], truth)
        if config.fit.enabled:
            table[f"{name} + triangulation + fit"] = _scores([mm["kp3d"][w][r] for (mm, w), r in zip(rows, real)], truth)
    # Single-view baselines on the same windows.
    T = model[0].data.num_frames
    wins = [(c, w) for c in clips for w in lifting.windows.make_windows(0, c, T, 0, config.inputs.score_threshold)]
    real = [w.mask > 0 for _, w in wins]
    truth = [truth_all[w.frames[r]] for (_, w), r in zip(wins, real)]
    back = {c.clip_id: baselines.backproject(c, config.inputs.score_threshold) for c in clips}
    table["back-projection (single view)"] = _scores([back[c.clip_id][w.frames[r]] for (c, w), r in zip(wins, real)], truth)
    body = body_model.get_body_model(config.fit.body, config.fit.path)
    pix = np.stack([c.keypoints[w.frames] for c, w in wins])
    weights = np.stack([(c.scores[w.frames] > config.inputs.score_threshold) * w.mask[:, None] for c, w in wins])
    res = fit.fit2d(body, jnp.asarray(pix), jnp.asarray(weights, jnp.float32),
                    jnp.asarray(np.stack([c.intrinsics[w.frames] for c, w in wins])),
                    jnp.asarray(np.stack([w.w2c for _, w in wins])))
    kp = np.asarray(res["keypoints"])
    table["body 2D fit (single view)"] = _scores([k[r] for k, r in zip(kp, real)], truth)
    if jax.process_index() == 0:
        (workdir / "evaluation.json").write_text(json.dumps(table, indent=1))
    return table


def format_table(table):
    rows = ["| method | PA-MPJPE (mm) | WA-MPJPE (mm) |", "| --- | ---: | ---: |"]
    rows += [f"| {k} | {v['pa_mpjpe']:.1f} | {v['wa_mpjpe']:.1f} |" for k, v in table.items()]
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_lib.add_argument(parser, help="configs/synth/<x>.py[:variant]")
    parser.add_argument("--workdir", required=True, help="inputs, prior, motions, store; re-running resumes")
    parser.add_argument("--evaluate", action="store_true",
                        help="compare the recovered 3D with the truth (mocap-rendered inputs)")
    parser.add_argument("--multihost", action="store_true", help="call jax.distributed.initialize() (one process per host)")
    args = config_lib.parse(parser, argv)
    absl_logging.set_verbosity(absl_logging.WARNING)
    sharding.initialize(args.multihost)
    os.makedirs(args.workdir, exist_ok=True)
    if args.evaluate:
        print(format_table(evaluate(args.config, args.workdir)))
    else:
        print(json.dumps(run(args.config, args.workdir), indent=1))


if __name__ == "__main__":
    main()
