"""VPoser converter: a random torch VPoser-layout checkpoint gives the same outputs in Flax."""
import jax.numpy as jnp
import numpy as np
import pytest

from anylift_jax.body import prior

torch = pytest.importorskip("torch")
nn = torch.nn


class _Normal(nn.Module):
    def __init__(self):
        super().__init__()
        self.mu = nn.Linear(512, 32)
        self.logvar = nn.Linear(512, 32)

    def forward(self, x):
        return self.mu(x), nn.functional.softplus(self.logvar(x))


class _VPoserLayout(nn.Module):
    """The official V02_05 module layout (indices matter: they name the checkpoint keys)."""

    def __init__(self):
        super().__init__()
        self.encoder_net = nn.Sequential(
            nn.Flatten(), nn.BatchNorm1d(63), nn.Linear(63, 512), nn.LeakyReLU(), nn.BatchNorm1d(512),
            nn.Dropout(0.1), nn.Linear(512, 512), nn.Linear(512, 512), _Normal())
        self.decoder_net = nn.Sequential(
            nn.Linear(32, 512), nn.LeakyReLU(), nn.Dropout(0.1), nn.Linear(512, 512), nn.LeakyReLU(),
            nn.Linear(512, 126))

    def decode_rotmat(self, z):
        x = self.decoder_net(z).reshape(-1, 3, 2)  # Gram–Schmidt on the two columns
        b1 = nn.functional.normalize(x[:, :, 0], dim=1)
        b2 = nn.functional.normalize(x[:, :, 1] - (b1 * x[:, :, 1]).sum(1, keepdim=True) * b1, dim=1)
        return torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], -1).reshape(z.shape[0], 21, 3, 3)


def test_converter_matches_torch(tmp_path):
    torch.manual_seed(0)
    net = _VPoserLayout()
    with torch.no_grad():
        for bn in (net.encoder_net[1], net.encoder_net[4]):
            bn.running_mean.normal_(0, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_(1, 0.2)
            bn.bias.normal_(0, 0.2)
    net.eval()
    path = tmp_path / "vposer.ckpt"
    torch.save({"state_dict": {f"vp_model.{k}": v for k, v in net.state_dict().items()}, "epoch": 3}, path)

    pose = np.random.default_rng(0).normal(0, 0.5, (5, 21, 3)).astype(np.float32)
    z = np.random.default_rng(1).normal(0, 1, (5, 32)).astype(np.float32)
    with torch.no_grad():
        mu_t, sigma_t = net.encoder_net(torch.tensor(pose))
        R_t = net.decode_rotmat(torch.tensor(z)).numpy()

    model = prior.load_vposer(path)
    mu, sigma = model.encode(jnp.asarray(pose))
    np.testing.assert_allclose(np.asarray(mu), mu_t.numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(sigma), sigma_t.numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(model.decode(jnp.asarray(z))), R_t, atol=1e-4)


def test_converter_errors(tmp_path):
    torch.save({"state_dict": {"vp_model.encoder_net.2.weight": torch.zeros(512, 63)}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="bad.ckpt: missing key 'vp_model.encoder_net.2.bias'"):
        prior.load_vposer(tmp_path / "bad.ckpt")
