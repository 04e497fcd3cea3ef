"""Train the shipped Anny pose prior: fit the default body to the shipped mocap, then fit a
Gaussian mixture to the fitted poses (see anylift_jax/assets/priors/README.md).

`python -m anylift_jax.body.train_prior --out anylift_jax/assets/priors/anny_pose_gmm.npz`
`python -m anylift_jax.body.train_prior --kind vae --out anny_pose_vae.npz`: a VPoser-architecture
VAE on the same poses instead (measured against the mixture in docs/benchmarks.md).

1. Poses: `fit3d` of Anny to every `stride`-th frame of the training clips (`mocap.TRAIN`) and of
   their mirror images, and of the held-out clips (`mocap.HELDOUT`, for evaluation only), in
   windows of `window` frames. The fitted poses are cached in `--poses` (a rerun skips the fits).
2. Prior: `prior.fit_gmm` on the training poses, printing the held-out poses' mean negative
   log-likelihood per frame and reconstruction error (projection onto the principal subspace); or
   `train_vae`, printing the held-out reconstruction error.
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from anylift_jax.body import fit, prior
from anylift_jax.geometry.rotations import axis_angle_to_matrix, geodesic_angle
from anylift_jax.body.model import get_body_model
from anylift_jax.data import mocap

# Fewer Adam steps than the default fit: the poses of these fits only need to be plausible.
POSE_FIT = fit.FitConfig(iters=(30, 120, 60), pose_prior="l2")


def _windows(kp, window):
    """(T, 17, 3) -> targets (W, window, 17, 3) and frame weights (W, window), padded by repetition."""
    T = len(kp)
    W = -(-T // window)
    pad = W * window - T
    target = np.concatenate([kp, np.repeat(kp[-1:], pad, 0)]).reshape(W, window, *kp.shape[1:])
    valid = (np.arange(W * window) < T).astype(np.float32).reshape(W, window)
    return target, valid


def fitted_poses(model, clips, window, cfg=POSE_FIT):
    """Anny poses (N, 64, 3) of all frames of `clips` (list of (T, 17, 3)), fitted in one batch,
    and the keypoint error (N,) metres of each frame's fit."""
    targets, valid = zip(*(_windows(kp, window) for kp in clips))
    target, valid = np.concatenate(targets), np.concatenate(valid)
    weights = np.broadcast_to(valid[..., None], valid.shape + (target.shape[2],))
    out = fit.fit3d(model, jnp.asarray(target), jnp.asarray(weights), cfg)
    pose = np.asarray(out["params"]["pose"]).reshape(-1, model.num_pose, 3)
    err = np.linalg.norm(np.asarray(out["keypoints"]) - target, axis=-1).mean(-1).reshape(-1)
    keep = valid.reshape(-1) > 0
    return pose[keep], err[keep]


def collect(model, stride, window):
    """{'train': (N, 64, 3), 'heldout': (M, 64, 3), and their fit errors}."""
    train = [mocap.load_shipped(n)[::stride] for n in mocap.TRAIN]
    train += [mocap.mirror(kp) for kp in train]
    heldout = [mocap.load_shipped(n)[::stride] for n in mocap.HELDOUT]
    out = {}
    for split, clips in (("train", train), ("heldout", heldout)):
        t0 = time.perf_counter()
        out[split], out[f"{split}_error"] = fitted_poses(model, clips, window)
        print(f"{split}: {len(out[split])} frames fitted in {time.perf_counter() - t0:.0f} s, "
              f"mean keypoint error {1000 * out[f'{split}_error'].mean():.1f} mm", flush=True)
    return out


def _angle_deg(a, b):
    """Rotation angle (…,) in degrees between axis-angle poses a and b (…, 3)."""
    return np.degrees(np.asarray(geodesic_angle(axis_angle_to_matrix(a), axis_angle_to_matrix(b))))


def train_vae(poses, body, steps=6000, batch=128, lr=1e-3, kl=5e-3, seed=0):
    """VPoser-architecture VAE on poses (N, J, 3): loss = mean squared error of the decoded rotation
    matrices + `kl` · KL(q(z | pose) ‖ N(0, I)) (VPoser v2's weighting), Adam, dropout on."""
    model = prior.VPoser(nnx.Rngs(seed), poses.shape[1], body)
    opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    x = jnp.asarray(poses, jnp.float32)
    R = axis_angle_to_matrix(x)

    @nnx.jit
    def step(model, opt, idx, key):
        def loss_fn(model):
            mu, sigma = model.encode(x[idx])
            z = mu + sigma * jax.random.normal(key, mu.shape)
            rec = jnp.mean(jnp.sum((model.decode(z) - R[idx]) ** 2, (-1, -2)))
            kld = jnp.mean(jnp.sum(0.5 * (sigma ** 2 + mu ** 2 - 1.0) - jnp.log(sigma), -1))
            return rec + kl * kld

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    key = jax.random.key(seed)
    model.train()
    for i in range(steps):
        key, k_idx, k_z = jax.random.split(key, 3)
        loss = step(model, opt, jax.random.randint(k_idx, (batch,), 0, len(poses)), k_z)
        if (i + 1) % 1000 == 0:
            print(f"VAE step {i + 1}: loss {float(loss):.4f}", flush=True)
    model.eval()
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m anylift_jax.body.train_prior")
    ap.add_argument("--out", required=True, help="output .npz (the prior)")
    ap.add_argument("--poses", help="cache of the fitted poses (default runs/anny_poses_s{stride}_w{window}.npz)")
    ap.add_argument("--stride", type=int, default=4, help="every stride-th mocap frame is fitted")
    ap.add_argument("--window", type=int, default=32, help="frames per fitted window")
    ap.add_argument("--kind", default="gmm", choices=("gmm", "vae"))
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--dims", type=int, default=24, help="principal subspace of the mixture")
    args = ap.parse_args(argv)
    args.poses = args.poses or f"runs/anny_poses_s{args.stride}_w{args.window}.npz"
    if os.path.exists(args.poses):
        with np.load(args.poses) as z:
            poses = {k: z[k] for k in z.files}
    else:
        poses = collect(get_body_model("anny"), args.stride, args.window)
        os.makedirs(os.path.dirname(os.path.abspath(args.poses)), exist_ok=True)
        np.savez(args.poses, **poses)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.kind == "vae":
        vae = train_vae(poses["train"], "anny")
        prior.save_vae(vae, args.out)
        for name in ("train", "heldout"):
            x = jnp.asarray(poses[name])
            err = _angle_deg(vae.reconstruct(x), x)
            print(f"VAE {name} reconstruction: mean angle {err.mean():.2f} deg per control", flush=True)
        print(f"wrote {args.out}")
        return
    x_train = poses["train"].reshape(len(poses["train"]), -1)
    x_held = poses["heldout"].reshape(len(poses["heldout"]), -1)
    np.savez(args.out, **prior.fit_gmm(x_train, args.components, args.dims))
    gmm = prior.load_gmm(args.out, x_train.shape[1])
    nll = {name: float(np.mean(prior.gmm_nll(gmm, x))) for name, x in (("train", x_train), ("held-out", x_held))}
    print(f"GMM K={args.components} d={args.dims}: NLL train {nll['train']:.1f}, "
          f"held-out {nll['held-out']:.1f} nats/frame; wrote {args.out}")
    # Reconstruction, comparable with the VAE's: projection onto the mixture's principal subspace.
    proj = gmm["mean"] + (x_held - gmm["mean"]) @ gmm["basis"] @ gmm["basis"].T
    err = _angle_deg(jnp.asarray(proj.reshape(poses["heldout"].shape), jnp.float32), jnp.asarray(poses["heldout"]))
    print(f"GMM subspace heldout reconstruction: mean angle {err.mean():.2f} deg per control")


if __name__ == "__main__":
    main()
