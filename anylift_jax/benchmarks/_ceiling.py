"""What the benchmarks share: the device's measured matmul ceiling, XLA's FLOP count, timing.

The ceiling is the FLOP/s of one large jitted matmul on the first local device, measured in the
same run as the benchmark (a busy machine lowers both alike), so "fraction of the ceiling" is
comparable across machines.
"""
import time

import jax
import jax.numpy as jnp
import numpy as np

# Matmul side per platform: large enough to be compute-bound, small enough to take < 1 s on 2 CPU cores.
CEILING_SIZE = {"cpu": 1024, "gpu": 8192, "tpu": 8192}


def timed(fn, *args, repeats=5):
    """Median wall seconds of `fn(*args)` (results blocked on), after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def xla_flops(compiled):
    """FLOPs of one call of a compiled function by XLA's cost analysis (nan when it has none).

    Under SPMD partitioning the count is per device. Work done in library custom calls (LAPACK
    SVD on CPU) is not counted, and a loop body is counted once whatever its trip count.
    """
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float((cost or {}).get("flops", float("nan")))


def matmul_ceiling(dtype=jnp.float32, size=None, repeats=5):
    """Measured FLOP/s (best of `repeats`) of a (n, n) @ (n, n) matmul in `dtype` on the first local device."""
    device = jax.local_devices()[0]
    n = size or CEILING_SIZE.get(device.platform, 4096)
    a, b = (jax.device_put(jnp.ones((n, n), dtype) / n, device) for _ in range(2))
    matmul = jax.jit(jnp.matmul)
    sec = min(timed(matmul, a, b, repeats=1) for _ in range(repeats))  # best: other load only slows it
    return 2.0 * n**3 / sec


def describe(flops_per_call, seconds_per_call, ceiling, devices=1):
    """'X GFLOP/s (Y % of the matmul ceiling)' for one call's FLOPs and wall time on `devices` devices."""
    rate = flops_per_call / seconds_per_call
    of = "the matmul ceiling" if devices == 1 else f"{devices} x the matmul ceiling"
    return f"{rate / 1e9:.2f} GFLOP/s ({100 * rate / (ceiling * devices):.1f} % of {of})"
