"""VPoser v2 pose prior (SMPL body pose, 21 joints) in Flax NNX, and a converter from the official
PyTorch-Lightning checkpoint (V02_05; `state_dict` keys prefixed `vp_model.`).

Layout (same module indices as the checkpoint):
encoder_net: 1 BatchNorm(63), 2 Linear(63, 512), LeakyReLU, 4 BatchNorm(512), Dropout(0.1),
6 Linear(512, 512), 7 Linear(512, 512), 8 {mu: Linear(512, 32), logvar: Linear(512, 32)}
(σ = softplus(logvar head)); decoder_net: 0 Linear(32, 512), LeakyReLU, Dropout(0.1),
3 Linear(512, 512), LeakyReLU, 5 Linear(512, 126) -> 21 × 6D (row-major 3×2 blocks) -> rotation
by Gram–Schmidt. VPoser weights are licensed non-commercially: never shipped, loaded by path.
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from anylift_jax.geometry.rotations import matrix_to_axis_angle, rot6d_to_matrix

NUM_JOINTS = 21
LATENT = 32
HIDDEN = 512


class VPoser(nnx.Module):
    """encode(pose (…, 21, 3) axis-angle) -> (μ, σ) (…, 32); decode(z (…, 32)) -> (…, 21, 3, 3)."""

    def __init__(self, rngs: nnx.Rngs):
        n_in = NUM_JOINTS * 3
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
        self.dec_out = nnx.Linear(HIDDEN, NUM_JOINTS * 6, rngs=rngs)

    def encode(self, pose):
        x = pose.reshape(pose.shape[:-2] + (NUM_JOINTS * 3,))
        x = jax.nn.leaky_relu(self.enc_fc1(self.enc_bn1(x)), 0.01)
        x = self.enc_drop(self.enc_bn2(x))
        x = self.enc_fc3(self.enc_fc2(x))
        return self.enc_mu(x), jax.nn.softplus(self.enc_logvar(x))

    def decode(self, z):
        x = self.dec_drop(jax.nn.leaky_relu(self.dec_fc1(z), 0.01))
        x = self.dec_out(jax.nn.leaky_relu(self.dec_fc2(x), 0.01))
        # VPoser's 6D is a row-major (3, 2) block: its columns are the two rotation columns.
        d6 = jnp.swapaxes(x.reshape(x.shape[:-1] + (NUM_JOINTS, 3, 2)), -1, -2).reshape(x.shape[:-1] + (NUM_JOINTS, 6))
        return rot6d_to_matrix(d6)

    def decode_axis_angle(self, z):
        """z (…, 32) -> body pose (…, 21, 3) axis-angle."""
        return matrix_to_axis_angle(self.decode(z))

    def reconstruct(self, pose):
        """pose (…, 21, 3) -> decode(μ) as axis-angle, e.g. for reconstruction error."""
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


__all__ = ["VPoser", "load_vposer", "pose_prior"]
