"""Schedules, forward process, samplers and losses against closed forms and independent computations."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from anylift_jax import skeleton
from anylift_jax.data import normalize
from anylift_jax.diffusion import losses, samplers
from anylift_jax.diffusion.schedules import Schedule, make_schedule


def test_cosine_schedule_matches_closed_form():
    s = make_schedule("cosine", 1000)
    n = np.arange(1, 1001)
    f = np.cos((n / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    # the last betas are clipped to 0.999, which only changes ᾱ where it is already ~0
    np.testing.assert_allclose(s.alphas_cumprod[:990], f[:990], rtol=1e-4, atol=1e-7)
    lin = make_schedule("linear", 1000)
    np.testing.assert_allclose(np.asarray(lin.betas)[[0, -1]], [1e-4, 2e-2], rtol=1e-5)
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("quadratic", 10)


def test_q_sample_matches_iterated_markov_chain():
    """Eq. 1 applied step by step gives the distribution of the closed form q(X_n | X_0)."""
    s = make_schedule("linear", 50)
    x0 = jnp.array([0.7, -1.2])
    n = 30
    rng = np.random.default_rng(0)
    x = np.tile(np.asarray(x0), (20000, 1))
    for beta in np.asarray(s.betas[: n + 1]):
        x = np.sqrt(1 - beta) * x + np.sqrt(beta) * rng.standard_normal(x.shape)
    ab = float(s.alphas_cumprod[n])
    np.testing.assert_allclose(x.mean(0), np.sqrt(ab) * np.asarray(x0), atol=0.02)
    np.testing.assert_allclose(x.std(0), np.sqrt(1 - ab), atol=0.02)
    eps = jax.random.normal(jax.random.key(0), (4, 2))
    xn = s.q_sample(jnp.broadcast_to(x0, (4, 2)), jnp.full((4,), n), eps)
    np.testing.assert_allclose(s.eps_from_x0(xn, jnp.full((4,), n), jnp.broadcast_to(x0, (4, 2))), eps, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_sampler_keeps_the_forward_marginals(eta):
    """With an oracle X̂_0, every DDIM/DDPM state X_n is distributed as q(X_n | X_0) (Song et al., Thm. 1).

    The oracle hands back its input at n = 0, so the returned sample is the state reached at n = 0.
    """
    ab = jnp.array([0.6, 0.2, 1e-6])
    s = Schedule(betas=1 - ab / jnp.concatenate([jnp.ones(1), ab[:-1]]), alphas_cumprod=ab)
    x0 = jnp.array([0.8, -0.5])
    keys = jax.random.split(jax.random.key(0), 20000)

    def run(k):
        def oracle(x, n):
            return jnp.where((n == 0)[:, None], x, x0)

        return samplers.ddim_sample(s, oracle, k, (1, 2), num_steps=3, eta=eta)[0]

    draws = jax.jit(jax.vmap(run))(keys)
    np.testing.assert_allclose(draws.mean(0), np.sqrt(0.6) * x0, atol=0.02)
    np.testing.assert_allclose(draws.std(0), np.sqrt(0.4), atol=0.02)


def test_ddim_recovers_oracle_x0_and_inpaints():
    s = make_schedule("cosine", 100)
    x0 = jax.random.normal(jax.random.key(3), (2, 3, 4, 2))
    out = samplers.ddim_sample(s, lambda x, n: x0, jax.random.key(4), x0.shape, num_steps=10)
    np.testing.assert_allclose(out, x0, atol=1e-5)
    known = jnp.full(x0.shape, 0.25)
    known_mask = jnp.zeros(x0.shape[:-1] + (1,), bool).at[:, 0].set(True)
    out = samplers.ddpm_sample(s, lambda x, n: jnp.clip(x, -1, 1), jax.random.key(5), x0.shape, clip=0.5,
                               known=known, known_mask=known_mask)
    np.testing.assert_allclose(out[:, 0], 0.25, atol=1e-6)
    assert np.abs(np.asarray(out[:, 1:])).max() <= 0.5 + 1e-6


def _batch(b=3, t=5, k=17):
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(b, t, k, 2)).astype(np.float32)
    e = np.array([2.0, -1.0, 1.0], np.float32)
    return {
        "x0": x0, "lines": normalize.condition_lines(normalize.compose(x0), e), "cam": np.zeros((b, t, 12), np.float32),
        "mask": np.ones((b, t), np.float32), "joint_mask": np.ones((b, t, k), np.float32),
        "is_proj": np.array([0, 1, 0], np.float32),
    }


def test_single_view_loss_terms():
    batch = _batch()
    rng = np.random.default_rng(1)
    pred = batch["x0"] + rng.normal(size=batch["x0"].shape).astype(np.float32)
    total, terms = losses.single_view_loss(jnp.asarray(pred), batch, line_weight=2.0)
    # Eq. 2 / Eq. 4 by hand: hips of the X^proj sample (index 1) are not counted
    w = np.ones(pred.shape[:-1])
    w[1][:, list(skeleton.HIPS)] = 0
    l1 = (np.abs(pred - batch["x0"]).sum(-1) * w).sum() / (2 * w.sum())
    # Eq. 3 on the global motion, distance from each point to the line through joint and epipole
    # (independent formula: |cross(p - a, e - a)| / |e - a|), X^proj sample excluded
    g, g_true = normalize.compose(pred), normalize.compose(batch["x0"])
    d = g_true - np.array([2.0, -1.0])
    r = g - g_true
    dist = np.abs(r[..., 0] * d[..., 1] - r[..., 1] * d[..., 0]) / np.linalg.norm(d, axis=-1)
    line = dist[[0, 2]].mean()
    np.testing.assert_allclose(terms["l1"], l1, rtol=1e-5)
    np.testing.assert_allclose(terms["line"], line, rtol=1e-4)
    np.testing.assert_allclose(total, l1 + 2.0 * line, rtol=1e-4)
    # moving the hips of the X^proj sample changes nothing; padding is ignored too
    pred2 = pred.copy()
    pred2[1][:, list(skeleton.HIPS)] += 5.0
    batch["mask"][0, -1] = 0
    pred2[0, -1] += 7.0
    batch2 = dict(batch)
    _, t2 = losses.single_view_loss(jnp.asarray(pred2), batch2, 2.0)
    _, t1 = losses.single_view_loss(jnp.asarray(pred), batch2, 2.0)
    np.testing.assert_allclose(t2["l1"], t1["l1"], rtol=1e-6)
    np.testing.assert_allclose(t2["line"], t1["line"], rtol=1e-6)


def test_multi_view_loss_masks_views_and_frames():
    x0 = np.zeros((2, 3, 4, 17, 2), np.float32)
    pred = np.ones_like(x0)
    jm = np.ones((2, 3, 4, 17), np.float32)
    jm[:, 2] = 0
    mask = np.ones((2, 4), np.float32)
    mask[:, 3] = 0
    pred[:, 2] = 100.0
    pred[:, :, 3] = 100.0
    total, terms = losses.multi_view_loss(jnp.asarray(pred), {"x0": x0, "joint_mask": jm, "mask": mask})
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
