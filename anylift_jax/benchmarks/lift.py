"""Lifting throughput and sampler accuracy: `python -m anylift_jax.bench lift [--checkpoint DIR]
[--clips 16] [--heldout DIR [--heldout-clips N]]`.

Throughput: clips/s of `lifting.sampling.lift_keypoints` (normalise, Stage-2 DDIM sampling, triangulation;
no body fit, no file I/O) on `--clips` clips of 120 frames rendered from the shipped training
mocap, with the given model or, by default, a randomly initialised configs/multi_view.py:tiny
model of 120-frame windows. FLOPs per clip: XLA's count of one compiled lifting batch plus
(steps − 1) denoiser calls (XLA counts a scan body once), next to the analytic matmul count of
`benchmarks.train_step`; FLOP/s as a fraction of the matmul ceiling measured in this run.

Accuracy (`--heldout`, the folder written by `data.heldout.build`, with `--checkpoint`): WA-MPJPE100
of the config's DDIM sampler against the 1000-step ancestral DDPM of MVLift on the same clips,
and the number of network evaluations of each (issue 7's target: ≤ 5 % worse at ≥ 20× fewer).
"""
import argparse
import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import anylift_jax
from anylift_jax import checkpoints, lifting, metrics, models, sharding, train
from anylift_jax.benchmarks import _ceiling
from anylift_jax.benchmarks.train_step import analytic_flops
from anylift_jax.data import heldout, mocap
from anylift_jax import config as config_lib
from anylift_jax.evaluate import load_keypoints3d
from anylift_jax.io import archive

CONFIGS = anylift_jax.CONFIGS
FRAMES = 120


def random_model():
    """(config, graphdef, rest, params) of configs/multi_view.py:tiny with 120-frame windows."""
    config = config_lib.load(f"{CONFIGS}/multi_view.py:tiny")
    config.data.num_frames = FRAMES
    graphdef, rest, state, _ = train.init_state(config, sharding.make_mesh())
    return config, graphdef, rest, state["ema"]


def benchmark_clips(count, seed=0):
    """`count` archive clips of FRAMES frames: windows of the long training clips, hand-held cameras."""
    rng = np.random.default_rng(seed)
    motions = [m for m in (mocap.load_shipped(n) for n in mocap.TRAIN) if len(m) >= FRAMES]
    clips = []
    for i in range(count):
        motion = motions[i % len(motions)]
        start = rng.integers(len(motion) - FRAMES + 1)
        arrays = heldout.render_benchmark_clip(motion[start:start + FRAMES], heldout.KINDS[i % len(heldout.KINDS)], rng)
        clips.append(archive.clip_from_arrays(f"bench{i}", arrays))
    return clips


def lift_flops(model, lift_fn, lc, clip, batch):
    """(XLA FLOPs, analytic FLOPs) of one lifting batch of `batch` windows of `clip`."""
    cfg, graphdef, rest, params = model
    w = lifting.windows.make_windows(0, clip, cfg.data.num_frames, lc.overlap, lc.score_threshold)[0]
    windows = {f.name: np.stack([getattr(w, f.name)] * batch) for f in dataclasses.fields(lifting.windows.Window)
               if f.name not in ("clip", "frames")}  # the arrays `lift_keypoints` passes
    key = jax.random.key(0)
    mesh = sharding.make_mesh()
    per_batch = mesh.size * _ceiling.xla_flops(lift_fn.lower(params, windows, key).compile())  # count is per device
    V, (T, K, _) = cfg.model.num_views, w.x.shape
    x = jnp.zeros((batch, V, T, K, 2))
    cond = {"x0": x, "cam": jnp.zeros((batch, V, T, 12)), "mask": jnp.ones((batch, T)),
            "joint_mask": jnp.ones((batch, V, T, K))}
    n = jnp.zeros((batch,), jnp.int32)

    def denoise(p, x, n, cond):
        return models.predict(nnx.merge(graphdef, p, rest), x, n, cond)

    per_eval = _ceiling.xla_flops(jax.jit(denoise).lower(params, x, n, cond).compile())
    steps = cfg.diffusion.sample_steps
    sized = ml_collections.ConfigDict(cfg.to_dict())
    sized.data.batch_size = batch
    return per_batch + (steps - 1) * per_eval, steps * analytic_flops(sized) / 3


def with_sampler(cfg, steps, eta):
    out = ml_collections.ConfigDict(cfg.to_dict())
    out.diffusion.update(sample_steps=steps, eta=eta)
    return out


def lift_timed(model, lift_fn, lc, clips, mesh, key):
    """(world keypoints per clip, seconds) of one `lift_keypoints` call."""
    t0 = time.perf_counter()
    out = lifting.sampling.lift_keypoints(clips, lift_fn, model[3], model[0].data.num_frames, lc, mesh, key)
    return out, time.perf_counter() - t0


def compare_samplers(model, lc, folder, count, mesh):
    """Print WA-MPJPE100 of DDIM (the config's steps) and of 1000-step DDPM on held-out clips."""
    cfg = model[0]
    paths = sorted((Path(folder) / "archive").glob("*.npz"))[:count]
    clips = [archive.read_clip(p) for p in paths]
    truth = [load_keypoints3d(Path(folder) / "truth" / p.name)[0] for p in paths]
    samplers = {f"DDIM {cfg.diffusion.sample_steps} steps, eta {cfg.diffusion.eta}": cfg,
                f"DDPM {cfg.diffusion.num_steps} steps": with_sampler(cfg, cfg.diffusion.num_steps, 1.0)}
    errors = {}
    for name, c in samplers.items():
        lift_fn = lifting.sampling.make_lift_fn(c, model[1], model[2], mesh, lc)
        pred, sec = lift_timed((c,) + model[1:], lift_fn, lc, clips, mesh, jax.random.key(0))
        errors[name] = float(np.mean([np.mean(metrics.wa_mpjpe(jnp.asarray(p), jnp.asarray(t)))
                                      for p, t in zip(pred, truth)]))
        print(f"{name}: {c.diffusion.sample_steps} network evaluations per window, "
              f"WA-MPJPE100 {errors[name]:.1f} mm over {len(clips)} held-out clips ({sec:.1f} s incl. compile)")
    ddim, ddpm = errors.values()
    print(f"DDIM vs DDPM: {100 * (ddim / ddpm - 1):+.1f} % WA-MPJPE100 at "
          f"{cfg.diffusion.num_steps / cfg.diffusion.sample_steps:.0f}x fewer network evaluations")


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m anylift_jax.bench lift")
    ap.add_argument("--checkpoint", help="trained Stage-2 model (workdir or export); default: random tiny model")
    ap.add_argument("--clips", type=int, default=16, help="clips of 120 frames to lift")
    ap.add_argument("--heldout", help="held-out benchmark folder (data.heldout.build) for DDIM vs DDPM")
    ap.add_argument("--heldout-clips", type=int, default=6, help="held-out clips in the DDIM vs DDPM comparison")
    args = ap.parse_args(argv)
    if args.heldout and not args.checkpoint:
        ap.error("--heldout compares samplers of a trained model: give --checkpoint too")
    ceiling = _ceiling.matmul_ceiling()
    model = checkpoints.load_model(args.checkpoint) if args.checkpoint else random_model()
    cfg = model[0]
    lc = config_lib.load(CONFIGS / "lift" / "default.py").lift
    mesh = sharding.make_mesh()
    clips = benchmark_clips(args.clips)
    lift_fn = lifting.sampling.make_lift_fn(cfg, model[1], model[2], mesh, lc)
    lift_timed(model, lift_fn, lc, clips, mesh, jax.random.key(0))  # compile
    _, sec = lift_timed(model, lift_fn, lc, clips, mesh, jax.random.key(1))
    windows = sum(len(lifting.windows.window_starts(FRAMES, cfg.data.num_frames, lc.overlap)) for _ in clips)
    batch = -(-lc.batch_size // mesh.size) * mesh.size
    calls = -(-windows // batch)
    xla, analytic = lift_flops(model, lift_fn, lc, clips[0], batch)
    print(f"model {args.checkpoint or 'random configs/multi_view.py:tiny'}: V {cfg.model.num_views}, "
          f"window {cfg.data.num_frames} frames, d_model {cfg.model.d_model}, {cfg.model.num_layers} layers, "
          f"DDIM {cfg.diffusion.sample_steps} steps; devices {jax.device_count()} x {jax.devices()[0].platform}")
    print(f"matmul ceiling {ceiling / 1e9:.1f} GFLOP/s per device (float32)")
    print(f"{len(clips)} clips x {FRAMES} frames = {windows} windows in {calls} batches of {batch}: "
          f"{sec:.2f} s, {len(clips) / sec:.2f} clips/s")
    per_clip = calls / len(clips) / 1e9
    print(f"FLOPs per clip: XLA {xla * per_clip:.2f} G, analytic network {analytic * per_clip:.2f} G")
    print(f"achieved {_ceiling.describe(xla * calls, sec, ceiling, jax.device_count())} (XLA count)")
    if args.heldout:
        compare_samplers(model, lc, args.heldout, args.heldout_clips, mesh)
