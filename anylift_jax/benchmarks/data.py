"""Loader throughput: `python -m anylift_jax.bench data [--root DIR] [--workers N] [--batches N]`.

Builds the demo stores of configs/data/mocap_{single,multi}_view.py (into a temporary directory
unless --root is given; an existing store there is reused) and prints batches/s of
`pipeline.make_iterator` at batch 32 × T 120, single view and 4 views, after a warm-up.
"""
import argparse
import tempfile
import time
from pathlib import Path

import anylift_jax
from anylift_jax import config as config_lib
from anylift_jax.data import build, pipeline

CONFIGS = anylift_jax.CONFIGS / "data"


def throughput(config, batches, warmup=3):
    it = pipeline.make_iterator(config, split="train", seed=0, process_index=0, process_count=1)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - start)


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m anylift_jax.bench data")
    parser.add_argument("--root", help="store directory to build into / reuse")
    parser.add_argument("--workers", type=int, default=0, help="grain worker processes")
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args(argv)
    root = Path(args.root or tempfile.mkdtemp(prefix="anylift_data_bench_"))
    for name in ("mocap_single_view", "mocap_multi_view"):
        config = config_lib.load(CONFIGS / f"{name}.py")
        config.data.root = str(root / name)
        config.data.num_workers = args.workers
        build.build(config, config.data.root, progress=False)
        d = config.data
        views = 1 if d.kind == "single_view" else d.views
        rate = throughput(config, args.batches)
        print(f"{name}: batch {d.batch_size} x views {views} x T {d.num_frames}, "
              f"workers {args.workers}: {rate:.1f} batches/s")
