"""The held-out benchmark of a corpus split, per motion category, beside the baselines:

    python -m anylift_jax.benchmark --split val --out runs/val [--checkpoint DIR] [--config.lift.KEY=VALUE ...]
        [--baseline backproject --baseline smplify] [--ablate]

Renders the split once (`data.heldout.build_split`; "heldout6" is the old six-clip benchmark),
lifts it with the lifting config (`--config`, default `configs/lift/default.py`, and its overrides), evaluates
(`evaluate`, per category) and writes `results.md` / `results.json` under `--out`. `--ablate`
also lifts with each lifting step switched off in turn (`ABLATIONS`) and writes `ablation.md`:
the on/off table that decides which steps the default keeps. Choose on "val"; run "test" once
per shipped model.
"""
import argparse
import copy
import json
import os
import shutil
import sys

import numpy as np
from scipy import stats

from anylift_jax import baselines, checkpoints, evaluate, lifting
from anylift_jax import config as config_lib
from anylift_jax.data import heldout

# Lifting steps and the setting that switches each off (the default config has them on).
ABLATIONS = {
    "mirror averaging": {"mirror_average": False},
    "consistent views": {"consistent_views": False},
    "smoothing": {"smooth_sigma": 0.0},
    "constant-size depth": {"constant_size": False},
    "its size prior": {"size_prior_weight": 0.0},
    "planted feet": {"planted_feet": False},
    "track depth": {"track_sigma": 0.0},
    "on input rays": {"on_input_rays": False},
}


def bench_dirs(out, split, fps=30.0):
    """(archive_dir, truth_dir) of the split's benchmark (at `fps`) under `out`, rendered when missing."""
    root = os.path.join(out, "bench")
    if not os.path.isdir(os.path.join(root, "truth")):
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (heldout.build if split == "heldout6" else lambda o: heldout.build_split(o, split, fps=fps))(tmp)
        os.replace(tmp, root)
    return os.path.join(root, "archive"), os.path.join(root, "truth")


def run(config, model, archive_dir, out):
    """Lift `archive_dir` afresh into `out` (a table must describe this model and config)."""
    shutil.rmtree(out, ignore_errors=True)
    return lifting.lift_archive(config, model, archive_dir, out)


def quality_report(summary, clip_metrics, worst_fraction=0.1):
    """How well lifting's quality flag (`lifting.quality`) finds bad clips: Spearman's rank
    correlation of (1 - quality) with each clip's WA-MPJPE100, and the share of the worst
    `worst_fraction` of clips (by WA-MPJPE100) that it flags, beside the share of all clips flagged."""
    names = sorted(set(summary["quality"]) & set(clip_metrics))
    wa = np.array([clip_metrics[n]["wa_mpjpe"] for n in names])
    bad = 1.0 - np.array([summary["quality"][n] for n in names])
    worst = {names[i] for i in np.argsort(-wa)[:max(1, round(worst_fraction * len(names)))]}
    flagged = set(summary["flagged"]) & set(names)
    return {"clips": len(names), "spearman": float(stats.spearmanr(bad, wa).statistic),
            "worst_flagged": len(worst & flagged) / len(worst), "flagged": len(flagged) / max(len(names), 1)}


def ablation_markdown(results, keys=evaluate.CATEGORY_KEYS):
    """Rows: the default and each step off; columns: WA-MPJPE100 per category, then the means over
    categories of `keys`."""
    cats = sorted(next(iter(results.values()))["categories"])
    head = [f"WA {c}" for c in cats] + [f"{evaluate.METRICS[k][0]} mean" for k in keys]
    lines = ["| lifting | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, r in results.items():
        cells = [f"{r['categories'][c]['wa_mpjpe']:.1f}" for c in cats]
        cells += [f"{r['mean_of_categories'][k]:.{evaluate.METRICS[k][2]}f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", choices=("val", "test", "heldout6"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoint", default=None, help="Stage-2 model (default: the shipped one)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step of a training workdir")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the rendered video (val, test)")
    parser.add_argument("--baseline", action="append", default=[], choices=baselines.BASELINES)
    parser.add_argument("--ablate", action="store_true", help="also lift with each step off in turn")
    config_lib.add_argument(parser, default=lifting.DEFAULT_CONFIG,
                            help="lifting config (default configs/lift/default.py); --config.lift.KEY=VALUE overrides")
    args = config_lib.parse(parser, argv)
    config = args.config
    model = checkpoints.load_model(args.checkpoint or lifting.SHIPPED_MODEL, args.step)
    archive_dir, truth_dir = bench_dirs(args.out, args.split, args.fps)
    preds = {"anylift": os.path.join(args.out, "anylift")}
    summary = run(config, model, archive_dir, preds["anylift"])
    for name in args.baseline:
        preds[name] = os.path.join(args.out, name)
        baselines.run(name, archive_dir, preds[name], config.body.name, config.body.path)
    results = evaluate.evaluate_methods(preds, truth_dir, input_dir=archive_dir)
    table = evaluate.markdown(results)
    print(evaluate.category_markdown(results) or table)
    print(f"lifted {summary['done']} clips, failed {len(summary['failed'])}")
    q = quality_report(summary, results["anylift"]["clips"])
    results["anylift"]["quality_flag"] = q
    line = (f"quality flag: Spearman {q['spearman']:.2f} with WA-MPJPE100 over {q['clips']} clips; flags "
            f"{q['worst_flagged']:.0%} of the worst 10 %, {q['flagged']:.0%} of all")
    print(line)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table + "\n" + line + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(evaluate.json_safe(results), f, indent=1)
    if args.ablate:
        rows = {"default": results["anylift"]}
        for name, change in ABLATIONS.items():
            variant = config_lib.override(copy.deepcopy(config), [f"lift.{k}={v!r}" for k, v in change.items()])
            out = os.path.join(args.out, "ablate", name.replace(" ", "_"))
            run(variant, model, archive_dir, out)
            rows[f"without {name}"] = evaluate.evaluate_dir(out, truth_dir, archive_dir)
            print(ablation_markdown(rows), flush=True)
        with open(os.path.join(args.out, "ablation.md"), "w") as f:
            f.write(ablation_markdown(rows))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
