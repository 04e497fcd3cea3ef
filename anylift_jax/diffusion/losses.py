"""Training losses on decomposed model-space keypoints: L1 (Eq. 2), line matching (Eq. 3), hybrid (Eq. 4).

All terms are means over the valid entries (frames × keypoints × coordinates), so their scale does
not depend on T, K or the amount of padding; the paper's sum over t differs by a constant factor.
"""
import chex
import jax.numpy as jnp

from anylift_jax import skeleton
from anylift_jax.data.normalize import compose


def masked_l1(x0, x0_hat, weight):
    """Mean |X_0 − X̂_0| over entries with weight: x0, x0_hat (…, K, 2), weight (…, K) in {0, 1}."""
    chex.assert_equal_shape([x0, x0_hat])
    chex.assert_shape(weight, x0.shape[:-1])
    err = jnp.abs(x0 - x0_hat).sum(-1) * weight
    return err.sum() / jnp.maximum(2.0 * weight.sum(), 1.0)


def point_line_distance(points, lines):
    """|a x + b y + c| for points (…, 2) and unit-normal lines (…, 3) (a² + b² = 1): (…,)."""
    return jnp.abs(jnp.sum(lines[..., :2] * points, -1) + lines[..., 2])


def hip_mask(num_keypoints):
    """(K,) float: 0 at the two hip joints (the root X^r), 1 elsewhere — the M of Eq. 4."""
    return jnp.ones((num_keypoints,), jnp.float32).at[jnp.array(skeleton.HIPS)].set(0.0)


def single_view_loss(x0_hat, batch, line_weight):
    """Hybrid-source loss of Stage 1 (Eq. 2 + Eq. 3 for video keypoints, Eq. 4 for X^proj).

    x0_hat (B, T, K, 2); batch: x0 (B, T, K, 2), lines (B, T, K, 3), mask (B, T),
    joint_mask (B, T, K), is_proj (B,). For `is_proj` samples the hips are dropped from the L1
    term (mask M) and no line loss is applied; the line loss is measured on the recomposed global
    motion X^g. Returns (total, {'l1', 'line'}).
    """
    b, t, k, _ = batch["x0"].shape
    chex.assert_shape([x0_hat, batch["lines"], batch["is_proj"]], [(b, t, k, 2), (b, t, k, 3), (b,)])
    valid = batch["mask"][..., None] * batch["joint_mask"]
    proj = batch["is_proj"].astype(jnp.float32)[:, None, None]
    l1 = masked_l1(batch["x0"], x0_hat, valid * (1.0 - proj * (1.0 - hip_mask(k))))
    line_w = valid * (1.0 - proj)
    dist = point_line_distance(compose(x0_hat), batch["lines"])
    line = (dist * line_w).sum() / jnp.maximum(line_w.sum(), 1.0)
    return l1 + line_weight * line, {"l1": l1, "line": line}


def multi_view_loss(x0_hat, batch):
    """Stage-2 L1 loss (Eq. 2) over all V views: x0_hat, batch['x0'] (B, V, T, K, 2). Returns (total, {'l1'})."""
    weight = batch["mask"][:, None, :, None] * batch["joint_mask"]
    l1 = masked_l1(batch["x0"], x0_hat, weight)
    return l1, {"l1": l1}
