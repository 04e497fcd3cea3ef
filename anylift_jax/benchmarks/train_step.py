"""Training-step throughput: `python -m anylift_jax.bench train_step --config configs/single_view.py:paper`.

Times the jitted train step of `anylift_jax.train` on random batches of the config's shapes
(batch 32 by default) on all local devices and prints ms/step, model FLOPs per step (XLA's cost
analysis of the compiled step and an analytic count: 3 × the forward matmul FLOPs) and achieved
GFLOP/s.
"""
import argparse
import time

import jax
import numpy as np

from anylift_jax import config as config_lib
from anylift_jax import sharding, train


def random_batch(config, rng):
    """A batch with the shapes and value ranges of `docs/design.md` "Batches"."""
    m, b, t = config.model, config.data.batch_size, config.data.num_frames
    k = m.num_keypoints
    lead = (b, m.num_views) if m.name == "multi_view" else (b,)
    lines = rng.normal(size=lead + (t, k, 3))
    lines /= np.linalg.norm(lines[..., :2], axis=-1, keepdims=True)
    batch = {"x0": rng.normal(size=lead + (t, k, 2)) * 0.3, "cam": rng.normal(size=lead + (t, 12)),
             "mask": np.ones((b, t)), "joint_mask": np.ones(lead + (t, k))}
    if m.name != "multi_view":
        batch.update(lines=lines, is_proj=(rng.random(b) < 0.25).astype(np.float64))
    return {key: v.astype(np.float32) for key, v in batch.items()}


def analytic_flops(config):
    """Training FLOPs per step: 3 × forward (matmuls and attention scores/values; 2 FLOPs per MAC)."""
    m, b, t = config.model, config.data.batch_size, config.data.num_frames
    d, inner, k = m.d_model, m.num_heads * m.head_dim, m.num_keypoints
    views = m.num_views if m.name == "multi_view" else 1
    tokens = b * views * (t + 1)
    block = 2 * tokens * (3 * d * inner + inner * d + 2 * d * m.ffn_dim)
    temporal_attn = 2 * 2 * b * views * (t + 1) ** 2 * inner
    cross_attn = 2 * 2 * b * (t + 1) * views**2 * inner
    in_dim = k * 2 + 12 + (k * 3 + 1 if m.name == "multi_view" else k * 3)
    io = 2 * b * views * t * (in_dim * d + d * d + d * k * 2)
    if m.name == "multi_view":
        fwd = m.num_layers * (2 * block + temporal_attn + cross_attn) + io
    else:
        fwd = m.num_layers * (block + temporal_attn) + io
    return 3 * fwd


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m anylift_jax.bench train_step")
    config_lib.add_argument(parser, help="model config[:variant]")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--dtype", default=None, help="override config.model.dtype (float32, bfloat16)")
    args = config_lib.parse(parser, argv)
    config = args.config
    config.data.batch_size = args.batch_size
    if args.dtype:
        config.model.dtype = args.dtype
    mesh = sharding.make_mesh()
    graphdef, rest, state, tx = train.init_state(config, mesh)
    step = train.make_train_step(config, graphdef, rest, tx, mesh)
    batch = sharding.shard_batch(random_batch(config, np.random.default_rng(0)), mesh)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla_flops = float(cost.get("flops", float("nan")))
    state, metrics = compiled(state, batch)  # warm-up
    jax.block_until_ready(metrics)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(times))
    flops = analytic_flops(config)
    print(f"config {args.config}  model {config.model.name}  dtype {config.model.dtype}  batch {args.batch_size}  "
          f"T {config.data.num_frames}  devices {jax.device_count()} x {jax.devices()[0].platform}")
    print(f"compile {compile_s:.1f} s")
    print(f"step {ms:.1f} ms (median of {args.steps}; min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f})")
    print(f"FLOPs/step: XLA cost analysis {xla_flops / 1e9:.1f} G, analytic {flops / 1e9:.1f} G")
    print(f"achieved {flops / (ms / 1e3) / 1e9:.1f} GFLOP/s (analytic)  {xla_flops / (ms / 1e3) / 1e9:.1f} GFLOP/s (XLA)")
    print(f"loss {float(metrics['loss']):.4f}")
