"""Triangulation throughput: `python -m anylift_jax.bench triangulate [--frames 4096] [--views 4]`.

Times `geometry.triangulate.triangulate` (weighted DLT + 3 Gauss–Newton steps) jitted over a
batch of frames × 17 joints seen by `--views` cameras on a ring 3–5 m away (1 px detector noise),
the layout of lifting, and prints points/s, XLA's FLOPs per point (the DLT's SVD is a LAPACK call
on CPU and is not in that count), achieved FLOP/s, the fraction of the matmul ceiling measured in
this run and the mean 3D error against the true points (a check that the work was done right).
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax import skeleton
from anylift_jax.benchmarks import _ceiling
from anylift_jax.geometry import cameras
from anylift_jax.geometry import triangulate as tri


def scene(frames, views, seed=0):
    """(points (F, 17, 3), pix (F, V, 17, 2), K (F, V, 3, 3), w2c (F, V, 4, 4)), float32."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.0, 1.0, (frames, skeleton.NUM_JOINTS, 3)) * [0.5, 0.5, 0.9] + [0.0, 0.0, 1.0]
    az = 2 * np.pi * (np.arange(views) / views + rng.uniform(0, 1, (frames, 1)))
    dist = rng.uniform(3.0, 5.0, (frames, views))
    eyes = np.stack([dist * np.cos(az), dist * np.sin(az), rng.uniform(0.5, 2.0, (frames, views))], -1)
    w2c = cameras.look_at(jnp.asarray(eyes, jnp.float32), jnp.asarray([0.0, 0.0, 1.0]))
    K = jnp.broadcast_to(cameras.intrinsics(jnp.float32(1000.0), 1280, 720), (frames, views, 3, 3))
    points = jnp.asarray(points, jnp.float32)
    pix, _ = cameras.project(points[:, None], K, w2c)
    pix = pix + jnp.asarray(rng.normal(0.0, 1.0, pix.shape), jnp.float32)
    return points, pix, K, w2c


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m anylift_jax.bench triangulate")
    ap.add_argument("--frames", type=int, default=4096, help="frames of 17 joints per call")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--gn-steps", type=int, default=3)
    args = ap.parse_args(argv)
    ceiling = _ceiling.matmul_ceiling()
    points, pix, K, w2c = scene(args.frames, args.views)
    weights = jnp.ones(pix.shape[:-1])
    fn = jax.jit(tri.triangulate, static_argnames="gn_steps")
    compiled = fn.lower(pix, K, w2c, weights, gn_steps=args.gn_steps).compile()
    sec = _ceiling.timed(compiled, pix, K, w2c, weights)
    n = points.shape[0] * points.shape[1]
    flops = _ceiling.xla_flops(compiled)
    err = float(jnp.linalg.norm(compiled(pix, K, w2c, weights) - points, axis=-1).mean())
    print(f"triangulate: {args.frames} frames x {skeleton.NUM_JOINTS} joints, {args.views} views, "
          f"{args.gn_steps} Gauss-Newton steps; {jax.devices()[0].platform}")
    print(f"matmul ceiling {ceiling / 1e9:.1f} GFLOP/s (float32)")
    print(f"{sec * 1e3:.1f} ms per call, {n / sec / 1e6:.3f} M points/s, mean 3D error {err * 1e3:.2f} mm")
    print(f"FLOPs per point (XLA count, LAPACK calls not in it): {flops / n:.0f}; "
          f"achieved {_ceiling.describe(flops, sec, ceiling)}")
