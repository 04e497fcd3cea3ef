"""Data-parallel scaling of the train step: `python -m anylift_jax.bench scaling [--devices 1,2,4,8]`.

Runs the jitted train step of configs/single_view.py:tiny (global batch `--batch`, the same random batches
at every device count) in one fresh process per device count, with that many fake CPU devices
(`--xla_force_host_platform_device_count`) or, with `--real`, the first N GPUs
(CUDA_VISIBLE_DEVICES). Prints
ms/step, examples/s, XLA's FLOPs per step and the loss of every step. The fake devices share the
same CPU cores, so on a CPU the figures check the sharding (every device count must give the
same losses, to float32 rounding of the reductions), not speed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import anylift_jax

CONFIG = f"{anylift_jax.CONFIGS}/single_view.py:tiny"


def worker(steps, batch):
    """Train `steps` steps on all devices of this process; print one JSON line of results."""
    import jax  # noqa: PLC0415  (after the parent has set XLA_FLAGS)

    from anylift_jax import sharding, train  # noqa: PLC0415
    from anylift_jax.benchmarks import _ceiling  # noqa: PLC0415
    from anylift_jax.benchmarks.train_step import random_batch  # noqa: PLC0415
    from anylift_jax import config as config_lib  # noqa: PLC0415

    config = config_lib.load(CONFIG)
    config.data.batch_size = batch
    mesh = sharding.make_mesh()
    graphdef, rest, state, tx = train.init_state(config, mesh)
    rng = np.random.default_rng(0)
    batches = [sharding.shard_batch(random_batch(config, rng), mesh) for _ in range(steps)]
    step = train.make_train_step(config, graphdef, rest, tx, mesh).lower(state, batches[0]).compile()
    losses, times = [], []
    for b in batches:
        t0 = time.perf_counter()
        state, metrics = step(state, b)
        losses.append(float(metrics["loss"]))  # blocks on the step
        times.append(time.perf_counter() - t0)
    print(json.dumps({"devices": jax.device_count(), "losses": losses, "flops": _ceiling.xla_flops(step),
                      "sec": float(np.median(times[1:] if steps > 1 else times))}))


def run_worker(devices, steps, batch, real):
    env = dict(os.environ)
    if real:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(devices)))
    else:
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    cmd = [sys.executable, "-m", "anylift_jax.benchmarks.scaling", "--worker",
           "--steps", str(steps), "--batch", str(batch)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"{devices} devices: worker failed\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m anylift_jax.bench scaling")
    ap.add_argument("--devices", default="1,2,4,8", help="device counts (each must divide --batch)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16, help="global batch")
    ap.add_argument("--real", action="store_true", help="the first N GPUs instead of N fake CPU devices")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.steps, args.batch)
        return
    from anylift_jax.benchmarks import _ceiling  # noqa: PLC0415

    ceiling = _ceiling.matmul_ceiling()
    counts = [int(n) for n in args.devices.split(",")]
    results = [run_worker(n, args.steps, args.batch, args.real) for n in counts]
    print(f"train step of configs/single_view.py:tiny, global batch {args.batch}, {args.steps} steps; "
          f"matmul ceiling of one device {ceiling / 1e9:.1f} GFLOP/s")
    print("devices | ms/step | examples/s | XLA GFLOPs/step per device | FLOP/s vs ceiling | losses")
    for r in results:
        total = r["flops"] * r["devices"]
        rate = _ceiling.describe(total, r["sec"], ceiling, r["devices"] if args.real else 1)
        print(f"{r['devices']:7d} | {r['sec'] * 1e3:7.1f} | {args.batch / r['sec']:10.1f} | "
              f"{r['flops'] / 1e9:26.3f} | {rate} | "
              + " ".join(f"{x:.6f}" for x in r["losses"]))
    ref = np.asarray(results[0]["losses"])
    worst = max(float(np.max(np.abs(np.asarray(r["losses"]) - ref) / np.abs(ref))) for r in results)
    print(f"largest relative loss difference from {results[0]['devices']} device(s): {worst:.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
