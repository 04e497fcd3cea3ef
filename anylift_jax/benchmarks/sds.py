"""SDS throughput: `python -m anylift_jax.bench sds [--clips 8] [--views 6] [--frames 120]
[--iterations 50] [--model tiny|paper]`.

A batch of input windows (shipped mocap `131_01` through "Internet video" cameras) is optimised
two ways with the same prior (random weights: speed does not depend on them), the same iterations
and the same per-iteration maths (`sds.problem`):
- vmapped: `sds.make_batch_fn`, one jit for all clips (vmap) and all iterations (`lax.scan`),
  clips sharded over the devices (the triangulation of the result is included);
- loop: a Python loop over clips and iterations around one jitted SDS iteration, the way an
  eager per-clip implementation runs.
Prints SDS iterations/s of the whole batch (every clip and view advanced once), view-iterations/s
and the speed-up.
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from anylift_jax import lifting, models, sds, sharding, synthesize
from anylift_jax.data import cameras, mocap, render2d
from anylift_jax.diffusion.schedules import make_schedule
from anylift_jax.io import archive
from anylift_jax.train import default_config

TINY = dict(d_model=64, num_layers=2, num_heads=2, head_dim=32, ffn_dim=128, dropout=0.0)


def input_windows(num_clips, num_frames):
    """(B,)-stacked window arrays of `lifting.windows.make_windows` (keys x, valid, mask, w2c, scale, center)."""
    kp3d = mocap.load_shipped("131_01")
    wins = []
    for b in range(num_clips):
        rng = np.random.default_rng(b)
        K = cameras.sample_intrinsics(rng, 1280, 720, (45.0, 75.0))
        arrays = render2d.render_clip(kp3d, cameras.sample_trajectory(rng, kp3d, "internet"), K, (1280, 720),
                                      rng, render2d.CLEAN)
        wins.append(lifting.windows.make_windows(b, archive.clip_from_arrays(f"c{b}", arrays), num_frames, 0, 0.3)[0])
    return {f: np.stack([getattr(w, f) for w in wins]) for f in ("x", "valid", "mask", "w2c", "scale", "center")}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--model", choices=("tiny", "paper"), default="tiny")
    args = parser.parse_args(argv)

    config = default_config()
    if args.model == "tiny":
        config.model.update(TINY)
    graphdef, params, rest = nnx.split(models.build_model(config.model, nnx.Rngs(0)), nnx.Param, ...)
    denoise = synthesize.prior_denoiser(graphdef, rest)
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_steps)
    cfg = sds.SDSConfig(iterations=args.iterations)
    mesh = sharding.make_mesh()
    B = -(-args.clips // mesh.size) * mesh.size
    clips = input_windows(B, args.frames)
    seeds = np.arange(B, dtype=np.int32)
    print(f"SDS: {B} clips x {args.views} views, T={args.frames}, {args.iterations} iterations, "
          f"{args.model} prior, {mesh.size} device(s) ({jax.devices()[0].platform})")

    fn = sds.make_batch_fn(denoise, schedule, cfg, args.views, 1.0, mesh)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(params, clips, seeds))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(fn(params, clips, seeds))
    vmapped = args.iterations / (time.perf_counter() - t0)

    def clip_problem(c):
        w2c, A, cam = sds.static_ring(c["w2c"], c["scale"], c["center"], args.views)
        return sds.problem(lambda *a: denoise(params, *a), schedule, c["x"], c["valid"], c["mask"], w2c, A,
                           cam, cfg)

    init = jax.jit(lambda c: clip_problem(c)[0])
    step = jax.jit(lambda carry, key, i, c: clip_problem(c)[1](carry, (key, i)))
    one = [{k: jnp.asarray(v[b]) for k, v in clips.items()} for b in range(B)]
    keys = jax.random.split(jax.random.key(0), args.iterations)
    jax.block_until_ready(step(init(one[0]), keys[0], 0, one[0]))  # compile
    t0 = time.perf_counter()
    for c in one:
        carry = init(c)
        for i in range(args.iterations):
            carry, _ = step(carry, keys[i], i, c)
        jax.block_until_ready(carry)
    loop = args.iterations / (time.perf_counter() - t0)

    views = B * (args.views - 1)
    print(f"vmapped+jit+scan: {vmapped:8.2f} batch iterations/s  {vmapped * views:9.1f} view-iterations/s"
          f"  (compile {compile_s:.1f} s)")
    print(f"per-clip loop:    {loop:8.2f} batch iterations/s  {loop * views:9.1f} view-iterations/s")
    print(f"speed-up: {vmapped / loop:.1f}x")
