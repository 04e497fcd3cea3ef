"""The motion corpus: real mocap of every rig as COCO-17 clips, with a manifest and the splits.

    python -m anylift_jax.data.corpus import --src /path/to/mocap-cmu   # raw folders -> corpus

The import reads `assets/corpus/import.json` (the import manifest: per source its format, rig
row of `mocap.RIGS`, licence and facts such as a prepended T-pose or a wrong header frame rate;
per clip its source file, subject, trial group, motion category and split), converts each file
(`mocap.load_bvh` / `mocap.load_deepmimic`, 30 fps, floor at z = 0), checks it
(`mocap.check_motion`; a bad clip is reported in one line naming the file and left out) and
writes `assets/corpus/<clip>.npz` (`keypoints3d` (T, 17, 3) float32, `fps`, `source`, `licence`)
and `assets/corpus/manifest.csv` (clip, source, licence, subject, trial, category, split, frames).

Splits are by subject, or by trial group inside the single-subject categories (ballet,
basketball), every category in each: "train" trains, "val" chooses every default, "test" is run
once per shipped model. "heldout6" holds the two shipped clips of the old six-clip benchmark.
"""
import argparse
import csv
import functools
import json
import sys
from pathlib import Path

import numpy as np

from anylift_jax.data import mocap

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ROOT = ASSETS / "corpus"
IMPORT = ROOT / "import.json"
MANIFEST = ROOT / "manifest.csv"
CATEGORIES = ("locomotion", "acrobatics", "martial", "dance", "ground", "sports")
SPLITS = ("train", "val", "test", "heldout6")
FIELDS = ("clip", "source", "licence", "subject", "trial", "category", "split", "frames")


@functools.cache
def manifest():
    """{clip: row dict of FIELDS} of the corpus, in manifest order (read once; do not modify)."""
    with open(MANIFEST, newline="") as f:
        return {row["clip"]: row for row in csv.DictReader(f)}


def clips(split, categories=None):
    """Names of the corpus clips of `split` (and of `categories`, default all), sorted."""
    if split not in SPLITS:
        raise KeyError(f"no split '{split}'; have {SPLITS}")
    return tuple(sorted(c for c, row in manifest().items()
                        if row["split"] == split and (categories is None or row["category"] in categories)))


def category(clip):
    """Motion category of a corpus clip."""
    return manifest()[clip]["category"]


def path(clip):
    """File of a corpus clip (the shipped clips stay in assets/mocap)."""
    row = manifest().get(clip)
    if row is None:
        raise KeyError(f"no corpus clip '{clip}'")
    return ASSETS / "mocap" / f"{clip}.npz" if row["source"] == "mocap" else ROOT / f"{clip}.npz"


def load(clip):
    """Keypoints (T, 17, 3) float32 at 30 fps of a corpus clip."""
    return mocap.load_npz(path(clip))[0]


def convert(entry, source, src):
    """COCO-17 keypoints (T, 17, 3) at 30 fps of one import-manifest clip entry."""
    file = Path(src) / entry["path"]
    if source["format"] == "deepmimic":
        return mocap.load_deepmimic(file)
    fps = next((v for k, v in source.get("source_fps", {}).items() if entry["path"].split("/", 1)[1].startswith(k)), None)
    return mocap.load_bvh(file, rig=mocap.RIGS[source["rig"]], source_fps=fps,
                          drop_frames=source.get("drop_frames", 0), reference=source.get("reference_frame"))


def import_corpus(src, out=ROOT, spec=IMPORT):
    """Convert every clip of the import manifest found under `src` into `out`; returns the
    {clip: error line} of the clips left out."""
    spec = json.loads(Path(spec).read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], {}
    for name, entry in spec["clips"].items():
        source = spec["sources"][entry["source"]]
        try:
            if source["format"] == "npz":
                kp = mocap.load_npz(ASSETS / entry["path"])[0]
            else:
                kp = convert(entry, source, src)
                mocap.check_motion(kp, Path(src) / entry["path"])
        except (OSError, ValueError) as e:
            failed[name] = str(e).splitlines()[0]
            print(f"left out {name}: {failed[name]}", file=sys.stderr)
            continue
        if source["format"] != "npz":
            np.savez_compressed(out / f"{name}.npz", keypoints3d=kp, fps=np.float64(30.0),
                                source=np.str_(f"{source['repository']}: {entry['path']}"),
                                licence=np.str_(source["licence"]))
        rows.append(dict(clip=name, source=entry["source"], licence="CMU", subject=entry["subject"],
                         trial=entry["trial"], category=entry["category"], split=entry["split"], frames=len(kp)))
        print(f"{name}: {len(kp)} frames, {entry['category']}, {entry['split']}", flush=True)
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    manifest.cache_clear()
    return failed


def summary():
    """Markdown table: clips and minutes per split and category."""
    rows = manifest().values()
    lines = ["| split | " + " | ".join(CATEGORIES) + " | all |", "|---" * (len(CATEGORIES) + 2) + "|"]
    for split in SPLITS:
        cells = []
        for cats in [(c,) for c in CATEGORIES] + [CATEGORIES]:
            sel = [r for r in rows if r["split"] == split and r["category"] in cats]
            cells.append(f"{len(sel)} / {sum(int(r['frames']) for r in sel) / 1800:.1f} min")
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="convert the raw folders into the corpus")
    imp.add_argument("--src", required=True, help="folder holding the import manifest's source folders")
    imp.add_argument("--out", default=str(ROOT))
    sub.add_parser("summary", help="clips and minutes per split and category")
    args = parser.parse_args(argv)
    if args.cmd == "import":
        failed = import_corpus(args.src, args.out)
        print(f"{len(failed)} clip(s) left out")
    print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
