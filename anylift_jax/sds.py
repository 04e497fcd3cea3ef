"""Multi-view 2D motion synthesis by score distillation (Sec. 2.1, Eq. 5–6).

Given one input view (model space, decomposed, docs/design.md) and the cameras of V − 1 virtual
ring views, the ring views' 2D sequences are optimised so that each looks like a sample of the
frozen single-view prior (SDS, Eq. 5) and all views agree with each other's epipolar lines (line
matching on the recomposed global motion, Eq. 6). The whole optimisation is one `lax.scan`; it is
written for one clip, and `make_batch_fn` vmaps it over clips, adds the triangulation of the V
views (Sec. 2.1, end) and shards the clips over a device mesh in one jit.
"""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import optax

from anylift_jax import sharding, views
from anylift_jax.data.normalize import camera_condition, compose
from anylift_jax.geometry import epipolar
from anylift_jax.geometry import triangulate as tri


@dataclasses.dataclass(frozen=True)
class SDSConfig:
    iterations: int = 400
    learning_rate: float = 2e-2
    line_weight: float = 10.0  # weight of the cross-view line losses (Eq. 6) against SDS (Eq. 5)
    # Noise levels drawn uniformly from [n_min, n_hi) (0-based steps of the prior's schedule), where
    # n_hi falls linearly from n_max at the first iteration to n_min + anneal_floor·(n_max − n_min)
    # at the last: coarse structure first, details last (anneal_floor = 1: no annealing).
    n_min: int = 20
    n_max: int = 980
    anneal_floor: float = 1.0
    # Start of the ring views: "zeros" (MVLift) or "input" (the input view's decomposed keypoints,
    # i.e. the pose seen from the front, with the input's root motion).
    init: str = "zeros"


def static_ring(w2c_in, scale, center, num_views):
    """The virtual ring of one window from its input view alone (docs/design.md "Several views"),
    static: Stage-1 SDS keeps the ring where the frame-0 pelvis is estimated, while Stage-2 data
    and lifting translate it with the pelvis track (`lifting.sampling.ring_geometry`).

    w2c_in (T, 4, 4) input camera; scale (), center (2,) its model-space normalisation (s₀, c₀).
    Returns w2c (V, T, 4, 4) (view 0 the input camera), A (V, 3, 3) model intrinsics and cam
    (V, T, 12): each view's *own* trajectory condition C, relative to its own frame 0 and divided
    by d₀, as the single-view prior was trained with.
    """
    pelvis0, d0 = views.estimate_pelvis0(w2c_in[0], scale, center)
    w2c = views.ring_cameras(w2c_in, pelvis0, num_views)
    return w2c, views.ring_intrinsics(scale, center, num_views), camera_condition(w2c, d0)


def pairwise_fundamentals(A, w2c):
    """F[u, v, t] (V, V, T, 3, 3) mapping model points of view u to lines in view v.

    A: (V, 3, 3) model intrinsics, w2c: (V, T, 4, 4).
    """
    T_uv = epipolar.relative_pose(w2c[:, None], w2c[None, :])
    return epipolar.fundamental(A[:, None, None], A[None, :, None], T_uv)


def line_losses(F, xg, weight):
    """Mean |⟨L^{u→v}_t, (X^g_{v,t}, 1)⟩| over ordered pairs u ≠ v, frames and joints (Eq. 6).

    F: (V, V, T, 3, 3); xg: (V, T, K, 2) global model-space motion; weight: (V, T, K) joint
    weights (0 for missing joints and padded frames).
    """
    V = xg.shape[0]
    lines = epipolar.epipolar_lines(F, xg[:, None])  # (u, v, T, K, 3): lines of X_u in view v
    dist = jnp.abs(epipolar.point_line_distance(lines, jnp.broadcast_to(xg[None], lines.shape[:-1] + (2,))))
    w = weight[:, None] * weight[None, :] * (1.0 - jnp.eye(V))[:, :, None, None]
    return jnp.sum(w * dist) / jnp.maximum(jnp.sum(w), 1.0)


def noise_levels(key, num, step, config: SDSConfig):
    """(num,) int noise steps for SDS iteration `step` (the annealed range of `SDSConfig`)."""
    progress = step / max(config.iterations - 1, 1)
    top = config.n_max - progress * (1.0 - config.anneal_floor) * (config.n_max - config.n_min)
    u = jax.random.uniform(key, (num,))
    return (config.n_min + u * (top - config.n_min)).astype(jnp.int32)


def problem(denoise, schedule, x_in, valid, mask, w2c, A, cam, config: SDSConfig):
    """The SDS optimisation of one clip as (carry, step): `step(carry, (key, i)) -> (carry, (sds,
    line))` is iteration i (Adam on the ring views), carry[0] the ring views (V-1, T, K, 2).

    Arguments as `synthesize`. SDS (Eq. 5) with w(n) = √((1 − ᾱ_n)/ᾱ_n): then w(n)(ε̂ − ε) =
    X_v − X̂_0, an x0-space residual whose size does not blow up at low noise, which keeps its
    balance against the line loss independent of the drawn n.
    """
    V, T, K = w2c.shape[0], x_in.shape[0], x_in.shape[1]
    chex.assert_shape(x_in, (T, K, 2))
    chex.assert_shape([valid, mask], [(T, K), (T,)])
    chex.assert_shape([w2c, A, cam], [(V, T, 4, 4), (V, 3, 3), (V, T, 12)])
    F = pairwise_fundamentals(A, w2c)
    valid = valid * mask[:, None]
    weight = jnp.concatenate([valid[None], jnp.broadcast_to(mask[None, :, None], (V - 1, T, K))], 0)
    # The prior sees, for each ring view, the epipolar lines of the (fixed) input keypoints.
    cond_lines = epipolar.epipolar_lines(F[0, 1:], compose(x_in)[None]) * valid[None, ..., None]
    view_mask = jnp.broadcast_to(mask, (V - 1, T))
    frame_w = view_mask[..., None, None] / jnp.maximum(jnp.sum(mask) * K, 1.0)

    def loss_fn(x_ring, key, i):
        k_n, k_eps = jax.random.split(key)
        n = noise_levels(k_n, V - 1, i, config)
        eps = jax.random.normal(k_eps, x_ring.shape)
        x0_hat = jax.lax.stop_gradient(
            denoise(schedule.q_sample(x_ring, n, eps), n, cam[1:], cond_lines, view_mask))
        sds = 0.5 * jnp.sum(frame_w * jnp.square(x_ring - x0_hat))
        xg = compose(jnp.concatenate([x_in[None], x_ring], 0))
        line = line_losses(F, xg, weight)
        return sds + config.line_weight * line, (sds, line)

    tx = optax.adam(config.learning_rate)
    if config.init == "zeros":
        x_ring = jnp.zeros((V - 1, T, K, 2), jnp.float32)
    elif config.init == "input":
        x_ring = jnp.broadcast_to(x_in * valid[..., None], (V - 1, T, K, 2))
    else:
        raise ValueError(f"sds.init: unknown initialisation {config.init!r} (zeros, input)")

    def step(carry, inputs):
        x_ring, opt_state = carry
        key, i = inputs
        grads, (sds, line) = jax.grad(loss_fn, has_aux=True)(x_ring, key, i)
        updates, opt_state = tx.update(grads, opt_state)
        return (optax.apply_updates(x_ring, updates), opt_state), (sds, line)

    return (x_ring, tx.init(x_ring)), step


def synthesize(denoise, schedule, x_in, valid, mask, w2c, A, cam, key, config: SDSConfig):
    """Optimise the V − 1 ring views of one clip; returns (X (V, T, K, 2), {'sds', 'line'}).

    denoise(x_n (V-1, T, K, 2), n (V-1,), cam (V-1, T, 12), lines (V-1, T, K, 3), mask (V-1, T))
    -> X̂_0, the frozen single-view prior. x_in: (T, K, 2) decomposed input view (X[0] = x_in);
    valid: (T, K) observed input joints; mask: (T,) real frames; w2c: (V, T, 4, 4) with view 0 the
    input camera; A: (V, 3, 3) model intrinsics; cam: (V, T, 12) each view's trajectory condition.
    All `config.iterations` steps of `problem` run in one `lax.scan`; iteration i uses the i-th
    key of `jax.random.split(key, iterations)`. The loss curves 'sds', 'line' are (iterations,).
    """
    carry, step = problem(denoise, schedule, x_in, valid, mask, w2c, A, cam, config)
    inputs = (jax.random.split(key, config.iterations), jnp.arange(config.iterations))
    (x_ring, _), (sds, line) = jax.lax.scan(step, carry, inputs)
    return jnp.concatenate([x_in[None], x_ring], 0), {"sds": sds, "line": line}


def triangulate_clip(X, valid, mask, w2c, A, ring_weight):
    """3D joints (T, K, 3) of one SDS clip from its V model-space views, padded frames weighing 0,
    and their reprojection error (for rejecting windows; lifting's batched triangulation is
    `lifting.sampling.triangulate_views`).

    X: (V, T, K, 2) decomposed views (view 0 the input); valid (T, K); mask (T,); w2c (V, T, 4, 4);
    A (V, 3, 3). Input joints weigh 1 where observed, ring joints `ring_weight`. Returns
    (kp3d (T, K, 3), error (V, T, K)): the distance in model units (fraction of the frame-0 person
    height) between each view's keypoints and the reprojected 3D joints.
    """
    V, T, K = X.shape[:3]
    xg = jnp.swapaxes(compose(X), 0, 1)  # (T, V, K, 2)
    weights = jnp.concatenate([valid[:, None], jnp.full((T, V - 1, K), ring_weight)], 1)
    weights = weights * mask[:, None, None]
    Ab = jnp.broadcast_to(A[None], (T, V, 3, 3))
    cams = jnp.swapaxes(w2c, 0, 1)
    kp3d = tri.triangulate(xg, Ab, cams, weights)
    return kp3d, jnp.swapaxes(tri.reprojection_error(kp3d, xg, Ab, cams), 0, 1)


def make_batch_fn(denoise, schedule, config: SDSConfig, num_views, ring_weight, mesh):
    """One jit over a batch of clips: ring geometry, SDS (vmapped) and triangulation.

    denoise(params, x_n, n, cam, lines, mask) -> X̂_0 (batched over its leading axis). Returns
    `fn(params, clips, seeds)` with clips a dict of x (B, T, K, 2) decomposed input views, valid
    (B, T, K), mask (B, T), w2c (B, T, 4, 4), scale (B,), center (B, 2), and seeds (B,) int32 (the
    randomness of clip b is `fold_in(key(0), seeds[b])`, so results do not depend on the batch a
    clip lands in). B must be a multiple of the mesh size; clips are sharded over 'data'. Returns a
    dict: views (B, V, T, K, 2), kp3d (B, T, K, 3), error (B, V, T, K), w2c (B, V, T, 4, 4),
    A (B, V, 3, 3), sds and line (B, iterations).
    """

    def one(params, c, seed):
        w2c, A, cam = static_ring(c["w2c"], c["scale"], c["center"], num_views)
        X, curves = synthesize(lambda *a: denoise(params, *a), schedule, c["x"], c["valid"], c["mask"],
                               w2c, A, cam, jax.random.fold_in(jax.random.key(0), seed), config)
        kp3d, error = triangulate_clip(X, c["valid"], c["mask"], w2c, A, ring_weight)
        return {"views": X, "kp3d": kp3d, "error": error, "w2c": w2c, "A": A, **curves}

    def fn(params, clips, seeds):
        return jax.vmap(one, in_axes=(None, 0, 0))(params, clips, seeds)

    data = sharding.data_sharded(mesh)
    return jax.jit(fn, in_shardings=(sharding.replicated(mesh), data, data), out_shardings=data)
