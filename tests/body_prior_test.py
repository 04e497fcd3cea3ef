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


def _random_vposer_ckpt(path):
    torch.manual_seed(1)
    net = _VPoserLayout()
    net.eval()
    torch.save({"state_dict": {f"vp_model.{k}": v for k, v in net.state_dict().items()}}, path)
    return str(path)


@pytest.mark.slow  # one SMPL + VPoser fit compile: ~22 s on 2 idle cores
def test_fit3d_optimises_vposer_latents(tmp_path):
    """SMPL fit through VPoser's decoder (a random one): the fitted pose is the decoding of the
    returned latents, and optimising them brings the keypoints onto targets posed by that decoder."""
    import jax

    from anylift_jax.body import fit
    from anylift_jax.body import model as bm
    from anylift_jax.body import synthetic

    smpl = bm.get_body_model("smpl", synthetic.write_smpl_file(tmp_path / "m.npz", seed=1))
    path = _random_vposer_ckpt(tmp_path / "vposer.ckpt")
    vposer = prior.load_vposer(path)
    T = 6
    rng = np.random.default_rng(0)
    z_true = jnp.asarray(0.5 * rng.normal(size=(1, 1, 32)) + 0.1 * rng.normal(size=(1, T, 32)), jnp.float32)
    truth = smpl.init_params((1,), T)
    truth["orient"] = jnp.full((1, T, 3), jnp.array([np.pi / 2, 0.0, 0.0]))  # stand up in Z-up
    truth["transl"] = jnp.asarray(np.linspace([0, 0, 1.0], [0.3, 0.1, 1.0], T)[None], jnp.float32)
    pad = jnp.zeros((1, T, 2, 3))
    truth["pose"] = jnp.concatenate([vposer.decode_axis_angle(z_true), pad], 2)
    target = jax.jit(smpl.keypoints)(truth)
    mean_pose = {**truth, "pose": jnp.concatenate([vposer.decode_axis_angle(jnp.zeros((1, T, 32))), pad], 2)}
    err_mean_pose = float(jnp.linalg.norm(smpl.keypoints(mean_pose) - target, axis=-1).mean())

    cfg = fit.FitConfig(iters=(0, 150, 0), lr=0.05, vposer=path)
    out = fit.fit3d(smpl, target, jnp.ones(target.shape[:-1]), cfg)
    assert out["latent"].shape == (1, T, 32)
    pose = np.asarray(out["params"]["pose"])
    np.testing.assert_allclose(pose[..., :21, :], np.asarray(vposer.decode_axis_angle(out["latent"])), atol=1e-4)
    np.testing.assert_array_equal(pose[..., 21:, :], 0.0)  # SMPL's hand joints stay at rest
    assert float(out["error"][0]) < 0.3 * err_mean_pose, (float(out["error"][0]), err_mean_pose)


def test_gmm_fit_and_density_match_scipy(tmp_path):
    """EM recovers a known two-cluster mixture, and `gmm_nll` equals the full-space mixture density
    (component covariances B Σ_k Bᵀ + σ²(I − B Bᵀ)) evaluated by scipy."""
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    D, d = 9, 3
    centres = np.zeros((2, D))
    centres[0, :3], centres[1, :3] = [1.0, 0.0, 0.5], [-1.0, 0.5, 0.0]
    x = np.concatenate([rng.normal(centres[k], 0.1, (600, D)) for k in (0, 1)])
    x[:, 3:] *= 0.05 / 0.1  # the residual dimensions vary less
    g = prior.fit_gmm(x, components=2, dims=d)
    np.testing.assert_allclose(np.sort(g["weights"]), [0.5, 0.5], atol=0.02)
    found = g["mean"] + g["means"] @ g["basis"].T
    for c in centres:
        assert np.min(np.linalg.norm(found[:, :3] - c[:3], axis=-1)) < 0.03
    np.savez(tmp_path / "g.npz", **g)
    gmm = prior.load_gmm(tmp_path / "g.npz", D)

    B = g["basis"].astype(np.float64)
    resid = g["residual_var"] * (np.eye(D) - B @ B.T)
    logp = np.stack([np.log(w) + multivariate_normal(g["mean"] + B @ mu, B @ S @ B.T + resid).logpdf(x[:50])
                     for w, mu, S in zip(g["weights"], g["means"], g["covariances"])], -1)
    np.testing.assert_allclose(np.asarray(prior.gmm_nll(gmm, jnp.asarray(x[:50], jnp.float32))),
                               -logsumexp(logp, -1), rtol=1e-4, atol=2e-3)


def test_gmm_file_errors(tmp_path):
    g = prior.fit_gmm(np.random.default_rng(0).normal(size=(50, 6)), components=1, dims=2)
    np.savez(tmp_path / "ok.npz", **g)
    with pytest.raises(ValueError, match=r"ok.npz: key 'mean' has shape \(6,\), expected \(9,\)"):
        prior.load_gmm(tmp_path / "ok.npz", 9)
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in g.items() if k != "weights"})
    with pytest.raises(ValueError, match="bad.npz: missing key 'weights'"):
        prior.load_gmm(tmp_path / "bad.npz", 6)


def test_shipped_anny_prior_prefers_its_mean_pose():
    gmm = prior.load_gmm(prior.SHIPPED["anny"], 3 * 64)
    mean = gmm["mean"].astype(np.float32)
    jittered = mean + np.random.default_rng(0).normal(0, 0.3, (4, 192)).astype(np.float32)
    nll_mean, nll_jittered = prior.gmm_nll(gmm, jnp.asarray(mean)), prior.gmm_nll(gmm, jnp.asarray(jittered))
    assert np.isfinite(float(nll_mean)) and np.all(np.asarray(nll_jittered) > float(nll_mean) + 100)


def test_vae_weights_round_trip_and_body_check(tmp_path):
    import jax
    from flax import nnx

    from anylift_jax.body import fit
    from anylift_jax.body import model as bm
    from anylift_jax.body import synthetic

    vae = prior.VPoser(nnx.Rngs(3), num_joints=5, body="anny")
    vae.enc_bn1.mean.set_value(jnp.asarray(np.random.default_rng(0).normal(size=15), jnp.float32))
    vae.eval()
    prior.save_vae(vae, tmp_path / "vae.npz")
    back = prior.load_vae(tmp_path / "vae.npz")
    assert (back.num_joints, back.body) == (5, "anny")
    pose = jnp.asarray(np.random.default_rng(1).normal(0, 0.4, (3, 5, 3)), jnp.float32)
    z = jnp.asarray(np.random.default_rng(2).normal(size=(3, 32)), jnp.float32)
    np.testing.assert_allclose(np.asarray(back.encode(pose)[0]), np.asarray(vae.encode(pose)[0]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(back.decode(z)), np.asarray(vae.decode(z)), atol=1e-6)

    smpl = bm.get_body_model("smpl", synthetic.write_smpl_file(tmp_path / "m.npz", seed=1))
    target = jax.jit(smpl.keypoints)(smpl.init_params((1,), 2))
    cfg = fit.FitConfig(iters=(0, 1, 0), vposer=str(tmp_path / "vae.npz"))
    with pytest.raises(ValueError, match="vae.npz is a prior of 5 anny joints, not of the smpl body's 23"):
        fit.fit3d(smpl, target, jnp.ones(target.shape[:-1]), cfg)
