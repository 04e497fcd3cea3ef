"""Pose priors: VPoser v2 (SMPL body pose, 21 joints) in Flax NNX with a converter from the official
PyTorch-Lightning checkpoint (V02_05; `state_dict` keys prefixed `vp_model.`); the same architecture
for any joint count, trained on Anny poses by `anylift_jax.body.train_prior --kind vae` (weights in
an .npz); and the Gaussian mixture prior that ships for the default body (Anny), trained by
`anylift_jax.body.train_prior`.

Layout (same module indices as the checkpoint):
encoder_net: 1 BatchNorm(63), 2 Linear(63, 512), LeakyReLU, 4 BatchNorm(512), Dropout(0.1),
6 Linear(512, 512), 7 Linear(512, 512), 8 {mu: Linear(512, 32), logvar: Linear(512, 32)}
(σ = softplus(logvar head)); decoder_net: 0 Linear(32, 512), LeakyReLU, Dropout(0.1),
3 Linear(512, 512), LeakyReLU, 5 Linear(512, 126) -> 21 × 6D (row-major 3×2 blocks) -> rotation
by Gram–Schmidt. VPoser weights are licensed non-commercially: never shipped, loaded by path.
"""
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from anylift_jax.geometry.rotations import matrix_to_axis_angle, rot6d_to_matrix

NUM_JOINTS = 21
LATENT = 32
HIDDEN = 512


class VPoser(nnx.Module):
    """encode(pose (…, J, 3) axis-angle) -> (μ, σ) (…, 32); decode(z (…, 32)) -> (…, J, 3, 3).
    J = 21 (SMPL's body joints) for the official weights; `body` names the body model whose pose
    controls the joints are."""

    def __init__(self, rngs: nnx.Rngs, num_joints=NUM_JOINTS, body="smpl"):
        self.num_joints, self.body = num_joints, body
        n_in = num_joints * 3
        self.enc_bn1 = nnx.BatchNorm(n_in, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.enc_fc1 = nnx.Linear(n_in, HIDDEN, rngs=rngs)
        self.enc_bn2 = nnx.BatchNorm(HIDDEN, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.enc_drop = nnx.Dropout(0.1, rngs=rngs)
        self.enc_fc2 = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
        self.enc_fc3 = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
        self.enc_mu = nnx.Linear(HIDDEN, LATENT, rngs=rngs)
        self.enc_logvar = nnx.Linear(HIDDEN, LATENT, rngs=rngs)
        self.dec_fc1 = nnx.Linear(LATENT, HIDDEN, rngs=rngs)
        self.dec_drop = nnx.Dropout(0.1, rngs=rngs)
        self.dec_fc2 = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
        self.dec_out = nnx.Linear(HIDDEN, num_joints * 6, rngs=rngs)

    def encode(self, pose):
        x = pose.reshape(pose.shape[:-2] + (self.num_joints * 3,))
        x = jax.nn.leaky_relu(self.enc_fc1(self.enc_bn1(x)), 0.01)
        x = self.enc_drop(self.enc_bn2(x))
        x = self.enc_fc3(self.enc_fc2(x))
        return self.enc_mu(x), jax.nn.softplus(self.enc_logvar(x))

    def decode(self, z):
        x = self.dec_drop(jax.nn.leaky_relu(self.dec_fc1(z), 0.01))
        x = self.dec_out(jax.nn.leaky_relu(self.dec_fc2(x), 0.01))
        # VPoser's 6D is a row-major (3, 2) block: its columns are the two rotation columns.
        J = self.num_joints
        d6 = jnp.swapaxes(x.reshape(x.shape[:-1] + (J, 3, 2)), -1, -2).reshape(x.shape[:-1] + (J, 6))
        return rot6d_to_matrix(d6)

    def decode_axis_angle(self, z):
        """z (…, 32) -> body pose (…, J, 3) axis-angle."""
        return matrix_to_axis_angle(self.decode(z))

    def reconstruct(self, pose):
        """pose (…, J, 3) -> decode(μ) as axis-angle, e.g. for reconstruction error."""
        return self.decode_axis_angle(self.encode(pose)[0])


# Checkpoint module -> ours; BatchNorms carry running statistics as well.
_LINEARS = {"encoder_net.2": "enc_fc1", "encoder_net.6": "enc_fc2", "encoder_net.7": "enc_fc3",
            "encoder_net.8.mu": "enc_mu", "encoder_net.8.logvar": "enc_logvar",
            "decoder_net.0": "dec_fc1", "decoder_net.3": "dec_fc2", "decoder_net.5": "dec_out"}
_NORMS = {"encoder_net.1": "enc_bn1", "encoder_net.4": "enc_bn2"}


def load_vposer(path):
    """A VPoser (eval mode) with the weights of an official V02_05 `.ckpt` (read with ptloader,
    no torch needed). Missing or misshapen keys raise a one-line error naming file and key."""
    import ptloader

    ckpt = ptloader.load(str(path))
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: missing key 'state_dict' (not a PyTorch-Lightning VPoser checkpoint)")
    sd = ckpt["state_dict"]

    def get(key, shape):
        full = f"vp_model.{key}"
        if full not in sd:
            raise ValueError(f"{path}: missing key '{full}'")
        arr = np.asarray(sd[full], np.float32)
        if arr.shape != shape:
            raise ValueError(f"{path}: key '{full}' has shape {arr.shape}, expected {shape}")
        return jnp.asarray(arr)

    model = VPoser(nnx.Rngs(0))
    for src, dst in _LINEARS.items():
        layer = getattr(model, dst)
        n_in, n_out = layer.kernel.get_value().shape
        layer.kernel.set_value(get(f"{src}.weight", (n_out, n_in)).T)
        layer.bias.set_value(get(f"{src}.bias", (n_out,)))
    for src, dst in _NORMS.items():
        bn = getattr(model, dst)
        n = bn.scale.get_value().shape[0]
        bn.scale.set_value(get(f"{src}.weight", (n,)))
        bn.bias.set_value(get(f"{src}.bias", (n,)))
        bn.mean.set_value(get(f"{src}.running_mean", (n,)))
        bn.var.set_value(get(f"{src}.running_var", (n,)))
    model.eval()
    return model


def pose_prior(model, pose):
    """Negative log-density proxy of SMPL body poses (…, 21, 3): ½|μ(pose)|² of the latent mean."""
    mu, _ = model.encode(pose)
    return 0.5 * jnp.sum(mu ** 2, -1)


def save_vae(model, path):
    """Write a VPoser-architecture VAE's weights and running statistics to an .npz (no pickle)."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))
    arrays = {"/".join(map(str, key)): np.asarray(var.get_value()) for key, var in flat}
    np.savez(path, num_joints=np.int64(model.num_joints), body=np.str_(model.body), **arrays)


def load_vae(path):
    """The VAE written by `save_vae` (eval mode); a missing or misshapen key raises a one-line
    error naming file and key."""
    with np.load(path, allow_pickle=False) as z:
        for key in ("num_joints", "body"):
            if key not in z.files:
                raise ValueError(f"{path}: missing key '{key}' (not a pose VAE from train_prior)")
        model = VPoser(nnx.Rngs(0), int(z["num_joints"]), str(z["body"]))
        for key, var in nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))):
            name = "/".join(map(str, key))
            if name not in z.files:
                raise ValueError(f"{path}: missing key '{name}'")
            if z[name].shape != var.get_value().shape:
                raise ValueError(f"{path}: key '{name}' has shape {z[name].shape}, expected {var.get_value().shape}")
            var.set_value(jnp.asarray(z[name]))
    model.eval()
    return model


@functools.lru_cache(maxsize=8)
def cached_vposer(path):
    """The VAE at `path` (official VPoser `.ckpt`, or `.npz` from `save_vae`), loaded once per
    path; eagerly also when first asked for inside a jit trace (the fit's), so that its weights
    are constants, not tracers."""
    with jax.ensure_compile_time_eval():
        return load_vae(path) if str(path).endswith(".npz") else load_vposer(path)


# Gaussian mixture prior on flattened axis-angle poses x (D = 3 P): a mixture of K full-covariance
# Gaussians on the coordinates y = Bᵀ(x − m) in a d-dimensional principal subspace, times an
# isotropic Gaussian (variance σ²) on the residual x − m − B y. Stored as an .npz of `GMM_KEYS`.
GMM_KEYS = ("mean", "basis", "residual_var", "weights", "means", "covariances")
PRIORS = Path(__file__).resolve().parent.parent / "assets" / "priors"
SHIPPED = {"anny": PRIORS / "anny_pose_gmm.npz"}


def fit_gmm(x, components, dims, iters=300, reg=1e-4, seed=0):
    """Fit the prior to poses x (N, D) (numpy, float64 EM); returns the dict of `GMM_KEYS`.

    Components start from k-means++ seeds and a few Lloyd steps; `reg` (rad²) is added to every
    covariance diagonal so that components on few frames stay proper.
    """
    x = np.asarray(x, np.float64)
    N, D = x.shape
    mean = x.mean(0)
    _, S, Vt = np.linalg.svd(x - mean, full_matrices=False)
    basis = Vt[:dims].T  # (D, d)
    y = (x - mean) @ basis
    residual_var = max(float((S[dims:] ** 2).sum() / (N * (D - dims))), reg)
    rng = np.random.default_rng(seed)
    centres = [y[rng.integers(N)]]
    for _ in range(components - 1):  # k-means++
        d2 = np.min([((y - c) ** 2).sum(-1) for c in centres], 0)
        centres.append(y[rng.choice(N, p=d2 / d2.sum())])
    centres = np.array(centres)
    for _ in range(10):
        label = np.argmin(((y[:, None] - centres) ** 2).sum(-1), 1)
        centres = np.array([y[label == k].mean(0) if (label == k).any() else centres[k] for k in range(components)])
    resp = np.eye(components)[label]
    eye = np.eye(dims)
    for _ in range(iters):
        nk = resp.sum(0) + 1e-10
        weights = nk / N
        means = resp.T @ y / nk[:, None]
        diff = y[:, None] - means  # (N, K, d)
        covs = np.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None] + reg * eye
        logp = _log_gaussians(y, weights, means, covs)
        resp = np.exp(logp - logp.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
    return {"mean": mean.astype(np.float32), "basis": basis.astype(np.float32),
            "residual_var": np.float32(residual_var), "weights": weights.astype(np.float32),
            "means": means.astype(np.float32), "covariances": covs.astype(np.float32)}


def _log_gaussians(y, weights, means, covs):
    """log w_k + log N(y; μ_k, Σ_k), (N, K), numpy."""
    L = np.linalg.cholesky(covs)
    diff = y[:, None] - means
    sol = np.linalg.solve(L[None], diff[..., None])[..., 0]
    logdet = 2 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    return np.log(weights) - 0.5 * ((sol ** 2).sum(-1) + logdet + y.shape[1] * np.log(2 * np.pi))


def load_gmm(path, dim):
    """The prior stored at `path` for poses of `dim` = 3 P values, prepared for `gmm_nll`: a dict
    of float32 arrays (precision Cholesky factors and log-normalisers precomputed). A missing or
    misshapen key raises a one-line error naming file and key."""
    with np.load(path, allow_pickle=False) as z:
        for key in GMM_KEYS:
            if key not in z.files:
                raise ValueError(f"{path}: missing key '{key}'")
        g = {k: np.asarray(z[k], np.float64) for k in GMM_KEYS}
    if g["means"].ndim != 2 or 0 in g["means"].shape:
        raise ValueError(f"{path}: key 'means' has shape {g['means'].shape}, expected (components, dims)")
    K, d = g["means"].shape
    want = {"mean": (dim,), "basis": (dim, d), "residual_var": (), "weights": (K,), "covariances": (K, d, d)}
    for key, shape in want.items():
        if g[key].shape != shape:
            raise ValueError(f"{path}: key '{key}' has shape {g[key].shape}, expected {shape} "
                             f"(a prior for poses of {dim} values)")
    # Λ_k = P_k P_kᵀ with P_k = L_k⁻ᵀ (Σ_k = L_k L_kᵀ), so the quadratic form is |P_kᵀ (y − μ_k)|².
    L = np.linalg.cholesky(g["covariances"])
    prec = np.swapaxes(np.linalg.inv(L), -1, -2)
    log_norm = (np.log(g["weights"]) - np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
                - 0.5 * d * np.log(2 * np.pi)
                - 0.5 * (dim - d) * np.log(2 * np.pi * g["residual_var"]))
    return {"mean": g["mean"], "basis": g["basis"], "inv_residual_var": 1.0 / g["residual_var"],
            "means": g["means"], "prec_chol": prec, "log_norm": log_norm}


@functools.lru_cache(maxsize=8)
def cached_gmm(path, dim):
    """`load_gmm` as float32 numpy arrays (constants inside a jit trace), loaded once per (path, dim)."""
    return {k: np.asarray(v, np.float32) for k, v in load_gmm(path, dim).items()}


def gmm_nll(gmm, x):
    """Negative log-density (nats) of flattened poses x (…, D) under a `load_gmm` prior -> (…,)."""
    c = x - gmm["mean"]
    y = c @ gmm["basis"]
    r = c - y @ gmm["basis"].T
    z = jnp.einsum("kij,...ki->...kj", gmm["prec_chol"], y[..., None, :] - gmm["means"])
    logp = gmm["log_norm"] - 0.5 * jnp.sum(z ** 2, -1)
    return 0.5 * gmm["inv_residual_var"] * jnp.sum(r ** 2, -1) - jax.nn.logsumexp(logp, -1)


__all__ = ["VPoser", "load_vposer", "save_vae", "load_vae", "cached_vposer", "pose_prior", "fit_gmm",
           "load_gmm", "cached_gmm", "gmm_nll", "SHIPPED"]
