"""Body-fit benchmark: sequences/s and keypoint error of `body.fit.fit3d` at B=32, T=120, against
the reference recipe (one stage over all parameters, Adam lr 1e-2, 1000 iterations).

`python -m anylift_jax.bench fit [--body smpl|anny] [--batch 32] [--frames 120]`. The SMPL body
is the synthetic SMPL-format file (no licensed file needed); targets are the body's own keypoints
of a smooth random motion, so the error floor is 0.
"""
import argparse
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax.body import fit, synthetic
from anylift_jax.body.model import get_body_model


def _motion(model, B, T, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)[None, :, None]
    p = model.init_params((B,), T)
    up = np.array([np.pi / 2, 0, 0]) if model.name == "smpl" else np.zeros(3)
    yaw = rng.uniform(-np.pi, np.pi, (B, 1, 1)) + 0.3 * np.sin(2 * np.pi * t)
    p["orient"] = jnp.asarray(up + yaw * np.array([0, 0, 1.0]), jnp.float32)
    phase = rng.uniform(0, 6, (B, 1, model.num_pose, 1))
    p["pose"] = jnp.asarray(0.25 * rng.normal(size=(B, 1, model.num_pose, 3)) * np.sin(2 * np.pi * t[..., None] + phase), jnp.float32)
    p["transl"] = jnp.asarray(rng.normal(0, 2, (B, 1, 3)) + np.concatenate([t, 0.5 * t, 0 * t], -1), jnp.float32)
    spread = 0.25 if model.name == "anny" else 1.0
    p["shape"] = jnp.asarray(model.shape_default + spread * rng.uniform(-1, 1, (B, model.shape_dim)), jnp.float32)
    return p


def _timed(model, target, w, cfg):
    out = fit.fit3d(model, target, w, cfg)
    jax.block_until_ready(out)  # compile
    t0 = time.perf_counter()
    out = fit.fit3d(model, target, w, cfg)
    jax.block_until_ready(out)
    return time.perf_counter() - t0, float(jnp.mean(out["error"]))


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m anylift_jax.bench fit")
    ap.add_argument("--body", default="smpl", choices=("smpl", "anny"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--reference-iters", default="250,500,1000")
    args = ap.parse_args(argv)
    if args.body == "smpl":
        path = synthetic.write_smpl_file(tempfile.mkdtemp() + "/synthetic_smpl.npz")
        model = get_body_model("smpl", path)
    else:
        model = get_body_model("anny")
    B, T = args.batch, args.frames
    target = jax.jit(model.keypoints)(_motion(model, B, T))
    w = jnp.ones(target.shape[:-1])

    ours = fit.FitConfig()
    sec, err = _timed(model, target, w, ours)
    print(f"body={args.body} B={B} T={T} devices={jax.device_count()} ({jax.devices()[0].platform})")
    print(f"staged fit, {sum(ours.iters)} Adam steps {ours.iters}: {sec:.2f} s, {B / sec:.2f} sequences/s, "
          f"mean keypoint error {err * 1000:.2f} mm")
    for n in (int(x) for x in args.reference_iters.split(",")):
        ref = fit.FitConfig(iters=(0, 0, n), lr=1e-2)
        sec_r, err_r = _timed(model, target, w, ref)
        print(f"reference (1 stage, Adam 1e-2) {n} steps: {sec_r:.2f} s, {B / sec_r:.2f} sequences/s, "
              f"mean keypoint error {err_r * 1000:.2f} mm")
