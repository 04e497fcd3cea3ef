"""Batch lifting of keypoint archives to world-grounded 3D (Sec. 2.2, "Inference on Real-World Videos"):

    python -m anylift_jax.lift --input ARCHIVE --output OUT [--config configs/lift/default.py]
        [--config.lift.KEY=VALUE ...] [--checkpoint DIR]

Reads every `<clip>.npz` of ARCHIVE (docs/keypoint-archive.md), writes one `<clip>.npz` per clip
to OUT (resumable: valid outputs are skipped), prints the clips that failed and those the quality
flag marks. The stages are `anylift_jax.lifting.pipeline`'s.
"""
import argparse
import sys

from anylift_jax import checkpoints, sharding
from anylift_jax import config as config_lib
from anylift_jax.lifting import DEFAULT_CONFIG, SHIPPED_MODEL, lift_archive


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_lib.add_argument(parser, default=DEFAULT_CONFIG, help="lifting config[:variant] (default: configs/lift/default.py)")
    parser.add_argument("--input", required=True, help="keypoint archive folder (docs/keypoint-archive.md)")
    parser.add_argument("--output", required=True, help="folder for <clip>.npz outputs")
    parser.add_argument("--checkpoint", default=None, help="trained Stage-2 model (default: the shipped one)")
    args = config_lib.parse(parser, argv)
    sharding.initialize()
    summary = lift_archive(args.config, checkpoints.load_model(args.checkpoint or SHIPPED_MODEL), args.input, args.output)
    for name, reason in summary["failed"]:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    for name in summary["flagged"]:
        print(f"flagged: {name}: quality {summary['quality'][name]:.2f}", file=sys.stderr)
    print(f"done {summary['done']}, skipped {summary['skipped']}, failed {len(summary['failed'])}, "
          f"flagged {len(summary['flagged'])}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
