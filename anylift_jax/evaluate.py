"""Evaluate lifted clips against ground truth: per-clip and mean metrics, a markdown table, JSON.

    python -m anylift_jax.evaluate --pred OUT_DIR --truth TRUTH_DIR [--input ARCHIVE_DIR]
        [--baseline backproject|smplify ...] [--json FILE] [--markdown FILE]

`--pred` holds lifting outputs `<clip>.npz` with `keypoints3d` (T, 17, 3) (docs/keypoint-archive.md,
output table); it may be repeated as `--pred NAME=DIR` to put several methods (e.g. baselines)
side by side. `--truth` holds `<clip>.npz` with `keypoints3d` (T, 17, 3) and optionally `fps`, the
shipped mocap format (anylift_jax/assets/mocap/README.md). `--input`, the keypoint archive that was
lifted, adds the 2D reprojection error and lets `--baseline NAME` (repeatable; `anylift_jax.baselines`)
run a baseline on it into `--baseline-dir` (default `<first --pred>/../baselines/NAME`, resumable)
and evaluate it alongside. Clips are matched by file name; a truth clip without a
prediction, a prediction without truth, a frame-count mismatch or an unreadable file is listed
under "problems" and makes the exit status 1 (the other clips are still evaluated).

Metric definitions (WHAM/GVHMR) are in `anylift_jax.metrics`. The "mean" row is the mean of the
per-clip values over clips (GVHMR instead averages over all frames of a dataset).
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from anylift_jax import baselines, metrics
from anylift_jax.hoi.metrics import OBJECT_METRICS, evaluate_object
from anylift_jax.io.archive import ArchiveError, check_array, check_finite, load_npz, read_clip

DEFAULT_FPS = 30.0

# key -> (column name, unit, digits); the order is the column order of the tables.
METRICS = {
    "mpjpe": ("MPJPE", "mm", 1),
    "pa_mpjpe": ("PA-MPJPE", "mm", 1),
    "pa_mpjpe_seq": ("PA-MPJPE seq", "mm", 1),
    "w_mpjpe": ("W-MPJPE100", "mm", 1),
    "wa_mpjpe": ("WA-MPJPE100", "mm", 1),
    "rte": ("RTE", "%", 2),
    "jitter": ("Jitter", "10 m/s³", 2),
    "jitter_truth": ("Jitter GT", "10 m/s³", 2),
    "foot_sliding": ("Foot sliding", "mm", 2),
    "bone_std": ("Bone-length std", "mm", 2),
    "reproj_2d": ("2D error", "px", 2),
    # HOI clips (truth with an object pose): anylift_jax.hoi.metrics.evaluate_object
    **OBJECT_METRICS,
}
OBJECT_KEYS = ("object_rot6d", "object_transl", "object_scale")


def _mean(x):
    x = np.asarray(x, np.float64)
    return float(x.mean()) if x.size else math.nan


def evaluate_arrays(pred, truth, fps=DEFAULT_FPS, clip=None):
    """All metrics of one clip as {key: float} (keys and units in METRICS).

    pred, truth: (T, 17, 3) metres, world frame, Z up. fps: the clip's frame rate (jitter).
    clip: the input `io.archive.Clip`, for the 2D reprojection error (left out when None).
    """
    pred = np.asarray(pred, np.float32)
    truth = np.asarray(truth, np.float32)
    out = {
        "mpjpe": _mean(metrics.mpjpe(pred, truth)),
        "pa_mpjpe": _mean(metrics.pa_mpjpe(pred, truth)),
        "pa_mpjpe_seq": float(metrics.pa_mpjpe_sequence(pred, truth)),
        "w_mpjpe": _mean(metrics.w_mpjpe(pred, truth)),
        "wa_mpjpe": _mean(metrics.wa_mpjpe(pred, truth)),
        "rte": _mean(metrics.rte(pred, truth)),
        "jitter": _mean(metrics.jitter(pred, fps)),
        "jitter_truth": _mean(metrics.jitter(truth, fps)),
        "foot_sliding": float(metrics.foot_sliding(pred, truth)),
        "bone_std": _mean(metrics.bone_length_std(pred)),
    }
    if clip is not None:
        out["reproj_2d"] = float(metrics.reprojection_error(
            pred, clip.keypoints, clip.intrinsics, clip.cam_c2w, clip.scores))
    return out


def load_keypoints3d(path):
    """(keypoints3d (T, 17, 3) float32, fps float or None) of a prediction or truth file.

    Raises io.archive.ArchiveError naming the file and the key when it is unusable.
    """
    name = str(path)
    arrays, _ = load_npz(path, ["keypoints3d", "fps"])
    if "keypoints3d" not in arrays:
        raise ArchiveError(f"{name}: key 'keypoints3d': missing")
    kp = check_array(name, "keypoints3d", arrays["keypoints3d"], ("T", 17, 3), {}, kinds="f")
    check_finite(name, "keypoints3d", kp)
    fps = None
    if "fps" in arrays:
        fps = float(check_array(name, "fps", arrays["fps"], (), {}, kinds="iuf"))
    return kp.astype(np.float32), fps


def _clips(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise ArchiveError(f"{folder}: no such directory")
    return {p.stem: p for p in sorted(folder.glob("*.npz"))}


def evaluate_dir(pred_dir, truth_dir, input_dir=None):
    """Evaluate every clip present in both folders.

    Returns {"clips": {clip: {metric: float}}, "mean": {metric: float}, "problems": [str]}; the
    problems name the clips that could not be evaluated and why. Where truth files name their
    motion `category` (`data.heldout.build_split`), "clip_categories" adds {clip: category},
    "categories" {category: {metric: mean}} and "mean_of_categories" the mean of those means.
    """
    preds, truths = _clips(pred_dir), _clips(truth_dir)
    problems = [f"{preds[c]}: no ground truth '{c}.npz' in {truth_dir}"
                for c in preds if c not in truths]
    results, categories = {}, {}
    for name, truth_path in truths.items():
        if name not in preds:
            problems.append(f"{truth_path}: no prediction '{name}.npz' in {pred_dir}")
            continue
        try:
            truth, fps = load_keypoints3d(truth_path)
            pred, _ = load_keypoints3d(preds[name])
            if len(pred) != len(truth):
                raise ArchiveError(f"{preds[name]}: {len(pred)} frames, but the truth "
                                   f"{truth_path} has {len(truth)}")
            clip = None
            if input_dir is not None:
                clip = read_clip(Path(input_dir) / f"{name}.npz")
                if clip.num_frames != len(truth):
                    raise ArchiveError(f"{input_dir}/{name}.npz: {clip.num_frames} frames, but "
                                       f"the truth {truth_path} has {len(truth)}")
        except ArchiveError as e:
            problems.append(str(e))
            continue
        fps = fps or (clip.fps if clip is not None else DEFAULT_FPS)
        results[name] = evaluate_arrays(pred, truth, fps, clip)
        category = load_npz(truth_path, ["category"])[0].get("category")
        if category is not None:
            categories[name] = str(category)
        try:
            results[name].update(_object_metrics(pred, preds[name], truth, truth_path))
        except ArchiveError as e:
            problems.append(str(e))
    keys = [k for k in METRICS if any(k in r for r in results.values())]
    # Clips where a metric is undefined (nan, e.g. foot sliding without contacts) are left out.
    def means(names):
        return {k: _mean([results[c][k] for c in names if math.isfinite(results[c][k])]) for k in keys}

    out = {"clips": results, "mean": means(results), "problems": problems}
    if categories:
        out["clip_categories"] = categories
        out["categories"] = {cat: means([c for c in results if categories.get(c) == cat])
                             for cat in sorted(set(categories.values()))}
        out["mean_of_categories"] = {k: _mean([m[k] for m in out["categories"].values() if math.isfinite(m[k])])
                                     for k in keys}
    return out


def _object_metrics(pred_kp, pred_path, truth_kp, truth_path):
    """HOI metrics of a clip whose truth has an object pose (and `object_category`; `contact`
    optional), {} for other clips; ArchiveError when the prediction lacks the object pose."""
    truth, _ = load_npz(truth_path, OBJECT_KEYS + ("object_category", "contact"))
    if not all(k in truth for k in OBJECT_KEYS + ("object_category",)):
        return {}
    pred, _ = load_npz(pred_path, OBJECT_KEYS)
    missing = [k for k in OBJECT_KEYS if k not in pred]
    if missing:
        raise ArchiveError(f"{pred_path}: key '{missing[0]}': missing (the truth has an object pose)")
    return evaluate_object(pred_kp, pred, truth, str(truth["object_category"]), truth_kp)


def evaluate_methods(pred_dirs, truth_dir, input_dir=None):
    """{method name: pred_dir} -> {method name: evaluate_dir(...)}, in the given order."""
    return {name: evaluate_dir(d, truth_dir, input_dir) for name, d in pred_dirs.items()}


def _fmt(value, digits):
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


CATEGORY_KEYS = ("pa_mpjpe", "wa_mpjpe", "w_mpjpe", "rte")


def category_markdown(results, keys=CATEGORY_KEYS):
    """Markdown of the per-category means of `evaluate_methods` results (category × method rows;
    "mean" the mean over categories), or "" when the truth names no categories."""
    methods = [m for m in results if "categories" in results[m]]
    if not methods:
        return ""
    lines = ["| category | method | clips | " + " | ".join(f"{METRICS[k][0]} ({METRICS[k][1]})" for k in keys) + " |",
             "|---" * (len(keys) + 3) + "|"]
    cats = sorted({c for m in methods for c in results[m]["categories"]}) + ["mean"]
    for cat in cats:
        for m in methods:
            r = results[m]
            row = r["mean_of_categories"] if cat == "mean" else r["categories"].get(cat)
            if row is None:
                continue
            n = len(r["clips"]) if cat == "mean" else sum(v == cat for v in r["clip_categories"].values())
            lines.append(f"| {cat} | {m} | {n} | " + " | ".join(_fmt(row.get(k), METRICS[k][2]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def markdown(results):
    """Markdown of `evaluate_methods` results: a summary (metric rows, one column per method,
    means over clips), the per-category means where the truth names categories, and a per-clip
    table (clip × method rows, metric columns)."""
    methods = list(results)
    keys = [k for k in METRICS if any(k in r["mean"] for r in results.values())]
    lines = ["| metric | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for k in keys:
        name, unit, digits = METRICS[k]
        cells = [_fmt(results[m]["mean"].get(k), digits) for m in methods]
        lines.append(f"| {name} ({unit}) | " + " | ".join(cells) + " |")
    by_category = category_markdown(results)
    if by_category:
        lines += ["", by_category.rstrip("\n")]
    lines += ["", "| clip | method | " + " | ".join(METRICS[k][0] for k in keys) + " |",
              "|---" * (len(keys) + 2) + "|"]
    clips = sorted({c for r in results.values() for c in r["clips"]})
    for c in clips:
        for m in methods:
            if c in results[m]["clips"]:
                row = results[m]["clips"][c]
                cells = [_fmt(row.get(k), METRICS[k][2]) for k in keys]
                lines.append(f"| {c} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def json_safe(x):
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _pred_arg(text):
    name, sep, folder = text.partition("=")
    return (name, folder) if sep else (Path(text).name or text, text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m anylift_jax.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, action="append", type=_pred_arg,
                        metavar="[NAME=]DIR", help="folder of lifting outputs; repeatable")
    parser.add_argument("--truth", required=True, help="folder of ground-truth <clip>.npz")
    parser.add_argument("--input", help="the keypoint archive that was lifted (2D error)")
    parser.add_argument("--baseline", action="append", default=[], choices=baselines.BASELINES,
                        help="run this baseline on --input and evaluate it too; repeatable")
    parser.add_argument("--baseline-dir", help="outputs of the baselines go to DIR/NAME")
    parser.add_argument("--body", default="anny", help="body model of the smplify baseline: anny or smpl")
    parser.add_argument("--body-path", help="SMPL model file for --body smpl")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--markdown", help="write the markdown tables here")
    args = parser.parse_args(argv)
    pred_dirs = dict(args.pred)
    if len(pred_dirs) != len(args.pred):
        parser.error("two --pred folders have the same method name; use NAME=DIR")
    if args.baseline and not args.input:
        parser.error("--baseline needs --input, the keypoint archive that was lifted")
    root = Path(args.baseline_dir or Path(args.pred[0][1]).resolve().parent / "baselines")
    for name in args.baseline:
        if name in pred_dirs:
            parser.error(f"--baseline {name}: a --pred folder already has that method name")
        pred_dirs[name] = root / name
        try:
            baselines.run(name, args.input, pred_dirs[name], args.body, args.body_path)
        except (ArchiveError, ValueError, FileNotFoundError) as e:
            print(f"error: baseline {name}: {e}", file=sys.stderr)
            return 2
    try:
        results = evaluate_methods(pred_dirs, args.truth, args.input)
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = markdown(results)
    print(table, end="")
    problems = [f"{m}: {p}" for m, r in results.items() for p in r["problems"]]
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        doc = {"metrics": {k: {"name": n, "unit": u} for k, (n, u, _) in METRICS.items()},
               "methods": results}
        Path(args.json).write_text(json.dumps(json_safe(doc), indent=2, ensure_ascii=False))
    if not any(r["clips"] for r in results.values()):
        print("error: no clip could be evaluated", file=sys.stderr)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
