"""The end-to-end demo: `python -m anylift_jax.demo --workdir runs/demo` (offline, 2 CPU cores).

1. Renders the held-out shipped mocap clips through moving hand-held cameras with detector
   noise (`data.heldout`): a keypoint archive plus the 3D truth.
2. Lifts the archive with the Stage-2 model the package ships (`--checkpoint` for another one,
   `--train-steps N` to first train a tiny one from scratch on the other shipped clips).
3. Runs the baselines (naive fixed-height back-projection; `--smplify`: SMPLify-style 2D body fit).
4. Prints and writes the metrics table (`results.md`, `results.json`) and a GIF + contact sheet
   of one lifted clip.
5. `--hoi`: lifts the HOI benchmark (`data.heldout.build_hoi`, a box carried or pushed) with the
   shipped HOI model and writes its table with the object metrics (`results_hoi.md`).
"""
import argparse
import json
import os
import shutil
import sys
import time

import anylift_jax


from anylift_jax import baselines, checkpoints, evaluate, lifting, train, viz
from anylift_jax import config as config_lib
from anylift_jax.data import build, heldout
from anylift_jax.io import archive

CONFIGS = str(anylift_jax.CONFIGS)


def _stamp(msg, t0):
    print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)


def train_stage2(workdir, steps):
    """Build the Stage-2 store from the shipped TRAIN clips and train the tiny multi-view model."""
    config = config_lib.load(os.path.join(CONFIGS, "multi_view.py:tiny"))
    config.data.root = os.path.join(workdir, "stage2_data")
    config.train.num_steps = steps
    build.build(config, config.data.root)
    run = os.path.join(workdir, "stage2_run")
    os.makedirs(run, exist_ok=True)
    train.train(config, run)
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument("--checkpoint", default=None, help="Stage-2 model (default: the shipped one)")
    parser.add_argument("--train-steps", type=int, default=0, help="train a tiny Stage-2 model first")
    parser.add_argument("--fit-body", action="store_true",
                        help="fit the body model to the lifted keypoints (Anny on 2 CPU cores: minutes per clip)")
    parser.add_argument("--smplify", action="store_true",
                        help="also run the SMPLify-style 2D-fit baseline (minutes per clip on 2 CPU cores)")
    parser.add_argument("--hoi", action="store_true",
                        help="also lift the HOI benchmark (a box carried or pushed) with the shipped HOI model")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    wd = os.path.abspath(args.workdir)
    archive_dir, truth_dir = heldout.build(os.path.join(wd, "heldout"))
    clips, _ = archive.read_archive(archive_dir)
    _stamp(f"held-out benchmark: {len(clips)} clips in {archive_dir}", t0)

    checkpoint = args.checkpoint or lifting.SHIPPED_MODEL
    if args.train_steps:
        checkpoint = train_stage2(wd, args.train_steps)
        _stamp(f"trained a tiny Stage-2 model for {args.train_steps} steps in {checkpoint}", t0)
    config = config_lib.load(os.path.join(CONFIGS, "lift", "default.py"))
    config.lift.fit_body = args.fit_body
    preds = {"anylift": os.path.join(wd, "lifted")}
    # The table must describe this run's model and settings: never resume from an earlier run's
    # outputs (lifting itself skips any valid output, whichever model wrote it).
    shutil.rmtree(preds["anylift"], ignore_errors=True)
    summary = lifting.lift_archive(config, checkpoints.load_model(checkpoint), archive_dir, preds["anylift"])
    _stamp(f"lifted with {checkpoint}: {summary['done']} done, {summary['skipped']} skipped", t0)

    for name in ("backproject", "smplify") if args.smplify else ("backproject",):
        preds[name] = os.path.join(wd, name)
        baselines.run(name, archive_dir, preds[name], config.body.name, config.body.path)
    _stamp("baselines done", t0)

    results = evaluate.evaluate_methods(preds, truth_dir, input_dir=archive_dir)
    table = evaluate.markdown(results)
    print(table)
    with open(os.path.join(wd, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(wd, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    clip = min(clips, key=lambda c: c.num_frames)  # the video of the shortest clip: seconds, not minutes
    path = os.path.join(preds["anylift"], f"{clip.clip_id}.npz")
    out = archive.validate_output(path)
    vertices = viz.body_vertices(out, path)  # the body surface when --fit-body produced one
    for ext in (".gif", ".png"):
        viz.render_clip(out["keypoints3d"], os.path.join(wd, clip.clip_id + ext), clip=clip, fps=clip.fps,
                        vertices=vertices, confidence=out.get("confidence"))
    _stamp(f"wrote {wd}/results.md, {wd}/{clip.clip_id}.gif and .png", t0)
    if args.hoi:
        hoi_archive, hoi_truth = heldout.build_hoi(os.path.join(wd, "hoi_heldout"))
        lifted = os.path.join(wd, "hoi_lifted")
        shutil.rmtree(lifted, ignore_errors=True)
        lifting.lift_archive(config, checkpoints.load_model(lifting.SHIPPED_HOI_MODEL), hoi_archive, lifted)
        table = evaluate.markdown(evaluate.evaluate_methods({"anylift (HOI)": lifted}, hoi_truth, input_dir=hoi_archive))
        print(table)
        with open(os.path.join(wd, "results_hoi.md"), "w") as f:
            f.write(table)
        _stamp(f"HOI benchmark lifted; wrote {wd}/results_hoi.md", t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
