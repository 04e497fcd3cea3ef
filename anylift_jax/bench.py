"""Benchmarks: `python -m anylift_jax.bench NAME [args…]` runs `anylift_jax.benchmarks.NAME.main(args)`.

Each benchmark prints its figures (throughput, FLOPs, fraction of the measured matmul ceiling);
figures we measured are recorded in docs/benchmarks.md with the command.
"""
import importlib
import pkgutil
import sys

from anylift_jax import benchmarks


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))
    if not argv or argv[0] not in names:
        sys.exit(f"usage: python -m anylift_jax.bench {{{','.join(names)}}} [args…]")
    importlib.import_module(f"anylift_jax.benchmarks.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    main()
