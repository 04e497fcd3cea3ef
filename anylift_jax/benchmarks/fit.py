"""Body-fit benchmark: sequences/s and keypoint error of `body.fit.fit3d` at B=32, T=120, against
the reference recipe (one stage over all parameters, Adam lr 1e-2, 1000 iterations).

`python -m anylift_jax.bench fit [--body smpl|anny] [--batch 32] [--frames 120]`. The SMPL body
is the synthetic SMPL-format file (no licensed file needed); targets are the body's own keypoints
of a smooth random motion, so the error floor is 0.

`python -m anylift_jax.bench fit --noisy [--priors l2,default] [--w-gmm 1e-4,…] [--vae VAE.npz
--w-latent 1e-5,…]`: pose priors
compared on Anny fits to noisy real mocap (the held-out clips by default): Gaussian noise of
`--noise` m per coordinate, and the same with `--missing` of the joints dropped (weight 0).
Reported: the fit's error against the noisy targets and, against the clean truth, the keypoint
error (MPJPE, world frame) and the PA-MPJPE (one similarity per frame).

`python -m anylift_jax.bench fit --bodyfitter [--batch 32] [--frames 30]`: smplfitter's analytic
`BodyFitter` on the synthetic SMPL, per frame, with COCO-17 targets only (its 12 SMPL joints and 5
face vertices weighted 1, every other joint and vertex weighted 0), and, as its control, with the
whole true mesh as target.
"""
import argparse
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax import metrics
from anylift_jax.body import fit, synthetic
from anylift_jax.body.model import SMPL_COCO_JOINTS, SMPL_VERTEX_PICKS, get_body_model
from anylift_jax.data import mocap

# (clip, first frame) of each window of the --noisy comparison.
NOISY_WINDOWS = {"131_02": (60, 100), "amp_humanoid_hop": (20, 60), "131_01": (40, 140), "131_03": (40, 140)}


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


def _noisy_targets(clips, frames, noise, missing, seed=0):
    """Truth (N, frames, 17, 3) of the windows of `clips`, twice: noisy targets with all joints,
    then with `missing` of them dropped; weights (2N, frames, 17)."""
    truth = np.stack([mocap.load_shipped(c)[s:s + frames] for c in clips for s in NOISY_WINDOWS[c]])
    rng = np.random.default_rng(seed)
    target = np.concatenate([truth, truth]) + noise * rng.normal(size=(2 * len(truth),) + truth.shape[1:])
    w = np.ones(target.shape[:-1], np.float32)
    w[len(truth):] = rng.uniform(size=truth.shape[:-1]) >= missing
    return truth, target.astype(np.float32), w


def noisy(args):
    model = get_body_model("anny")
    clips = args.clips.split(",")
    truth, target, w = _noisy_targets(clips, args.frames, args.noise, args.missing)
    n = len(truth)
    print(f"anny, clips {clips}: {n} windows of {args.frames} frames; noise {100 * args.noise:.0f} cm per "
          f"coordinate; missing {100 * args.missing:.0f}% of the joints in the second half")
    priors = [p for p in args.priors.split(",") if p]
    runs = [("l2", fit.FitConfig(pose_prior="l2"))] if "l2" in priors else []
    runs += [(f"{p} w_gmm={float(w):g}", fit.FitConfig(pose_prior=p, w_gmm=float(w)))
             for p in priors if p != "l2" for w in args.w_gmm.split(",")]
    if args.vae:
        runs += [(f"VAE latents {args.vae} w_latent={float(w):g}", fit.FitConfig(vposer=args.vae, w_latent=float(w)))
                 for w in args.w_latent.split(",")]
    for label, cfg in runs:
        t0 = time.perf_counter()
        out = fit.fit3d(model, jnp.asarray(target), jnp.asarray(w), cfg)
        kp = np.asarray(out["keypoints"])
        sec = time.perf_counter() - t0
        truth2 = np.concatenate([truth, truth])
        mpjpe = 1000 * np.linalg.norm(kp - truth2, axis=-1).mean((1, 2))
        pa = np.asarray(metrics.pa_mpjpe(jnp.asarray(kp), jnp.asarray(truth2))).mean(-1)
        err = 1000 * np.asarray(out["error"])
        for half, sl in (("all joints", slice(0, n)), (f"{100 * args.missing:.0f}% missing", slice(n, 2 * n))):
            print(f"{label} | {half}: error vs target {err[sl].mean():.1f} mm, MPJPE vs truth "
                  f"{mpjpe[sl].mean():.1f} mm, PA-MPJPE {pa[sl].mean():.1f} mm ({sec:.0f} s incl. compile)", flush=True)


def bodyfitter(model, B, T):
    from smplfitter.jax import BodyFitter  # noqa: PLC0415

    N = B * T
    truth = _motion(model, B, T)
    target = np.asarray(jax.jit(model.keypoints)(truth)).reshape(N, 17, 3)
    mesh = np.asarray(jax.jit(model.vertices)(truth)).reshape(N, -1, 3)
    # Unobserved targets sit at the mid-hip: BodyFitter centres on the unweighted mean of all targets.
    hip = target[:, 11:13].mean(1, keepdims=True)
    joints, joint_w = np.repeat(hip, 24, 1), np.zeros((N, 24), np.float32)
    verts, vert_w = np.repeat(hip, mesh.shape[1], 1), np.zeros(mesh.shape[:2], np.float32)
    for k, j in SMPL_COCO_JOINTS.items():
        joints[:, j], joint_w[:, j] = target[:, k], 1.0
    for k, v in SMPL_VERTEX_PICKS.items():
        verts[:, v], vert_w[:, v] = target[:, k], 1.0
    fitter = BodyFitter(model._full)
    keys = ["pose_rotvecs", "shape_betas", "trans"]
    runs = [(f"COCO-17 only, num_iter={n}", n, (verts, joints, vert_w, joint_w)) for n in (1, 4)]
    runs.append(("whole true mesh (control), num_iter=1", 1, (mesh, None, None, None)))
    print(f"smplfitter BodyFitter, synthetic SMPL, {N} frames, {jax.devices()[0].platform}")
    for label, n, args in runs:
        f = jax.jit(lambda *a, n=n: fitter.fit(*a, num_iter=n, requested_keys=keys))
        jax.block_until_ready(f(*args))  # compile
        t0 = time.perf_counter()
        out = jax.block_until_ready(f(*args))
        sec = time.perf_counter() - t0
        rot = out["pose_rotvecs"].reshape(N, 1, 24, 3)
        params = {"orient": rot[:, :, 0], "pose": rot[:, :, 1:], "shape": out["shape_betas"],
                  "transl": out["trans"][:, None]}
        err = np.linalg.norm(np.asarray(jax.jit(model.keypoints)(params))[:, 0] - target, axis=-1)
        print(f"{label}: {1000 * sec:.0f} ms, mean COCO-17 keypoint error {1000 * err.mean():.1f} mm")


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m anylift_jax.bench fit")
    ap.add_argument("--body", default="smpl", choices=("smpl", "anny"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=None, help="default 120, or 40 with --noisy")
    ap.add_argument("--reference-iters", default="250,500,1000")
    ap.add_argument("--noisy", action="store_true", help="compare pose priors on noisy mocap (Anny)")
    ap.add_argument("--clips", default=",".join(mocap.HELDOUT))
    ap.add_argument("--priors", default="l2,default", help="l2, default or .npz paths")
    ap.add_argument("--w-gmm", default=str(fit.FitConfig.w_gmm))
    ap.add_argument("--vae", help="also fit through this pose VAE's latents (train_prior --kind vae)")
    ap.add_argument("--w-latent", default=str(fit.FitConfig.w_latent))
    ap.add_argument("--bodyfitter", action="store_true", help="smplfitter's BodyFitter on COCO-17 targets")
    ap.add_argument("--noise", type=float, default=0.03)
    ap.add_argument("--missing", type=float, default=0.3)
    args = ap.parse_args(argv)
    if args.noisy:
        args.frames = args.frames or 40
        return noisy(args)
    if args.bodyfitter:
        path = synthetic.write_smpl_file(tempfile.mkdtemp() + "/synthetic_smpl.npz")
        return bodyfitter(get_body_model("smpl", path), args.batch, args.frames or 30)
    args.frames = args.frames or 120
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
