"""Batched body fitting to 3D keypoints (the paper's final step) and to 2D keypoints (SMPLify-style
baseline), one jit for the whole fit, vmapped over sequences.

Stages (each a `jax.lax.scan` of Adam steps with fresh moments): 1. global orientation and
translation, 2. + body pose, 3. + shape. Loss = data term + pose prior + shape prior (towards
the model's default shape) + temporal smoothness (pose velocity, translation acceleration). The
3D fit's data term may add the robust 2D term of an observed view (`fit3d`'s `view`).
Pose prior (`FitConfig.pose_prior`): the body's shipped Gaussian mixture (Anny,
`body.prior.SHIPPED`) or the L2 norm of the axis-angle pose. With a VPoser-architecture VAE
(`FitConfig.vposer`: the official VPoser for SMPL, or one trained for Anny), the pose is its
decoding of per-frame latents z (T, 32), which the fit optimises instead of the pose, with the
prior |z|² (SMPLify-X's recipe).
Initialisation: per frame, the rigid Umeyama fit of the model's rest torso (shoulders, hips) to the
target torso (3D), or an upright body facing the camera at the depth that matches its torso
length (2D). Afterwards a ground plane z = floor is estimated from the feet (world Z up);
the result stays in the input world frame.

Sharding: with a `mesh` (axis 'data', `anylift_jax.sharding.make_mesh`), the B sequences are split
over its devices; sequences are independent, so the sharded fit equals the unsharded one.

The body model is a static argument of the jitted functions (hashed by identity): its arrays become
compile-time constants, which measured 3x faster per Adam step for Anny than passing them as
arguments (XLA pre-transposes the 624 x 13,718 x 3 blend shapes once).
"""
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from anylift_jax import sharding, skeleton
from anylift_jax.body import prior
from anylift_jax.geometry import cameras
from anylift_jax.geometry.align import umeyama
from anylift_jax.geometry.rotations import matrix_to_axis_angle

_TORSO = np.array(skeleton.TORSO)
_SHOULDERS = np.array(skeleton.SHOULDERS)
_ANKLES = np.array(skeleton.ANKLES)
_STAGE_KEYS = (("orient", "transl"), ("orient", "transl", "pose"), ("orient", "transl", "pose", "shape"))


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Iterations per stage, Adam learning rate and loss weights (data term in metres²)."""

    iters: tuple = (40, 160, 100)
    lr: float = 0.03
    # "default": the body's shipped prior (`prior.SHIPPED`; L2 for a body without one), "l2", or
    # the path of a Gaussian-mixture .npz made by `anylift_jax.body.train_prior`.
    pose_prior: str = "default"
    w_pose: float = 1e-5  # L2 prior: mean squared axis-angle (rad²)
    w_gmm: float = 3e-5  # mixture prior: mean negative log-density per frame (nats)
    # VPoser v2 checkpoint (.ckpt, SMPL) or pose VAE (.npz from train_prior --kind vae): the pose
    # is its decoding of per-frame latents, optimised instead of the pose.
    vposer: str | None = None
    w_latent: float = 1e-5  # VPoser: mean squared latent
    w_shape: float = 1e-5  # mean squared deviation from the default shape
    w_smooth_pose: float = 1e-4  # mean squared pose change per frame (rad²)
    w_smooth_transl: float = 1e-2  # mean squared translation acceleration (m²/frame⁴)
    robust_sigma: float = 0.1  # Geman–McClure scale of the 2D data term, metres at the body
    # fit3d with the input view: weight of its robust 2D term (metres² at the body, as the 3D term).
    w_view: float = 1.0
    floor_quantile: float = 0.1  # quantile over frames of the lower ankle height (see floor_height)


def _weighted_mean(x, w):
    return jnp.sum(w * x) / jnp.maximum(jnp.sum(w), 1e-8)


def _pose_prior(model, cfg):
    """Pose prior term: pose (T, P, 3) -> scalar (weighted)."""
    kind = cfg.pose_prior
    if kind == "default":
        kind = str(prior.SHIPPED[model.name]) if model.name in prior.SHIPPED else "l2"
    if kind == "l2":
        return lambda pose: cfg.w_pose * jnp.mean(pose ** 2)
    gmm = prior.cached_gmm(kind, 3 * model.num_pose)
    return lambda pose: cfg.w_gmm * jnp.mean(prior.gmm_nll(gmm, pose.reshape(pose.shape[0], -1)))


def _vposer_decoder(model, cfg):
    """Latents z (T, 32) -> body pose (T, P, 3): the VAE's joints, the body's remaining ones (SMPL's
    two hand joints under VPoser) at rest."""
    vae = prior.cached_vposer(cfg.vposer)
    if vae.body != model.name or vae.num_joints > model.num_pose:
        raise ValueError(f"FitConfig.vposer: {cfg.vposer} is a prior of {vae.num_joints} {vae.body} joints, "
                         f"not of the {model.name} body's {model.num_pose}")
    extra = model.num_pose - vae.num_joints

    def decode(z):
        pose = vae.decode_axis_angle(z)
        return jnp.concatenate([pose, jnp.zeros(pose.shape[:-2] + (extra, 3), pose.dtype)], -2)

    return decode


def _optimise(model, params, data_loss, cfg):
    """Run the stages on one sequence's params with loss data_loss(kp (T, 17, 3)) + priors.

    Returns the fitted params and the VPoser latents (T, 32) (None without VPoser)."""
    T = params["orient"].shape[0]
    if cfg.vposer is None:
        pose_key, to_body = "pose", lambda p: p
        gmm_or_l2 = _pose_prior(model, cfg)
        prior_term = lambda p: gmm_or_l2(p["pose"])
    else:
        decode = _vposer_decoder(model, cfg)
        params = {**{k: v for k, v in params.items() if k != "pose"}, "latent": jnp.zeros((T, prior.LATENT))}
        pose_key = "latent"
        to_body = lambda p: {**{k: v for k, v in p.items() if k != "latent"}, "pose": decode(p["latent"])}
        prior_term = lambda p: cfg.w_latent * jnp.mean(p["latent"] ** 2)

    def loss_fn(p):
        body = to_body(p)
        return (data_loss(model.keypoints(body)) + prior_term(p)
                + cfg.w_shape * jnp.mean((body["shape"] - model.shape_default) ** 2)
                + cfg.w_smooth_pose * jnp.mean(jnp.diff(body["pose"], axis=0) ** 2)
                + cfg.w_smooth_transl * jnp.mean(jnp.diff(body["transl"], 2, axis=0) ** 2))

    grad_fn = jax.value_and_grad(loss_fn)
    for keys, n in zip(_STAGE_KEYS, cfg.iters):
        if n == 0:  # a skipped stage costs no compilation
            continue
        keys = tuple(pose_key if k == "pose" else k for k in keys)
        tx = optax.adam(cfg.lr)
        state = tx.init(params)

        def step(carry, _, keys=keys):
            p, s = carry
            loss, g = grad_fn(p)
            # Frozen parameters get zero gradients, hence zero Adam moments and updates.
            g = {k: v if k in keys else jnp.zeros_like(v) for k, v in g.items()}
            upd, s = tx.update(g, s, p)
            return (optax.apply_updates(p, upd), s), loss

        (params, _), _ = jax.lax.scan(step, (params, state), None, length=n)
    return to_body(params), params.get("latent")


def _body_up(rest):
    """Unit up direction (3,) of a rest-pose body (17, 3): hips to shoulders, orthogonal to l-r hips."""
    left = rest[skeleton.L_HIP] - rest[skeleton.R_HIP]
    left = left / jnp.linalg.norm(left)
    up = rest[_SHOULDERS].mean(0) - skeleton.mid_hip(rest)
    up = up - (up @ left) * left
    return left, up / jnp.linalg.norm(up)


def floor_height(model, params, quantile):
    """Floor z from the ankles: the `quantile` over frames of the lower ankle, minus the body's
    ankle height above its soles in the rest pose. COCO-17 leaves the feet's orientation
    unobserved, so the ankles, not the fitted soles, carry the contact information."""
    rest_params = model.init_params((), 1)
    rest_params["shape"] = params["shape"]
    _, up = _body_up(model.keypoints(rest_params)[0])
    ankle_height = jnp.max(model.keypoints(rest_params)[0, _ANKLES] @ up) - jnp.min(model.feet(rest_params)[0] @ up)
    lowest = jnp.min(model.keypoints(params)[:, _ANKLES, 2], axis=-1)  # (T,)
    return jnp.quantile(lowest, quantile) - ankle_height


def _finish(model, fitted, target_kp_fn, cfg):
    params, latent = fitted
    kp = model.keypoints(params)
    out = {
        "params": params,
        "keypoints": kp,
        "error": target_kp_fn(kp),
        "floor": floor_height(model, params, cfg.floor_quantile),
    }
    if latent is not None:
        out["latent"] = latent
    return out


def _on_mesh(jitted, static, batched, mesh):
    """jitted(*static, *batched, mesh=mesh) with the leading (B) axis of every batched array split
    over the mesh's 'data' axis; B is padded to a multiple of the mesh size by repeating the last
    sequence, and the padding is dropped from the result."""
    if mesh is None:
        return jitted(*static, *batched, mesh=None)
    B = batched[0].shape[0]
    pad = -B % mesh.devices.size
    if pad:
        batched = [jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]) for x in batched]
    out = jitted(*static, *jax.device_put(batched, sharding.data_sharded(mesh)), mesh=mesh)
    return jax.tree.map(lambda x: x[:B], out) if pad else out


def _constrain(out, mesh):
    """Pin the batched outputs to the 'data' axis (sequences are independent: no communication)."""
    return out if mesh is None else jax.lax.with_sharding_constraint(out, sharding.data_sharded(mesh))


def _init_from_rotations(model, R, anchor, anchor_w, T):
    """Params with per-frame orientation R (T, 3, 3), translated so the torso's weighted mean
    lands on the anchor points (T, 4, 3)."""
    params = model.init_params((), T)
    params["orient"] = matrix_to_axis_angle(R)
    kp = model.keypoints(params)[:, _TORSO]
    w = anchor_w[..., None]
    params["transl"] = jnp.sum(w * (anchor - kp), 1) / jnp.maximum(jnp.sum(w, 1), 1e-8)
    return params


def _reprojection_m2(kp, pix, K, w2c, m_per_px):
    """Squared reprojection residual (T, 17) of kp (T, 17, 3) against pix (T, 17, 2), in metres
    at the body: pixels times m_per_px (T,), its depth over the focal length."""
    proj, _ = cameras.project(kp, K, w2c)
    return jnp.sum(((proj - pix) * m_per_px[:, None, None]) ** 2, -1)


def _geman_mcclure(r2, sigma):
    return sigma ** 2 * r2 / (sigma ** 2 + r2)


def _fit3d_one(model, target, weights, view, cfg):
    T = target.shape[0]
    rest = model.keypoints(model.init_params((), 1))[0]  # (17, 3)
    torso_w = weights[:, _TORSO]
    _, R, _ = umeyama(jnp.broadcast_to(rest[_TORSO], (T, 4, 3)), target[:, _TORSO],
                      torso_w + 1e-6, with_scale=False)
    params = _init_from_rotations(model, R, target[:, _TORSO], torso_w, T)

    def data_loss(kp):
        return _weighted_mean(jnp.sum((kp - target) ** 2, -1), weights)

    if view is not None:
        pix, pix_w, K, w2c = view
        # The target's own depth: the 2D term must not pull the body along the rays.
        depth = cameras.transform(w2c, skeleton.mid_hip(target)[:, None])[:, 0, 2]
        m_per_px = depth / (0.5 * (K[:, 0, 0] + K[:, 1, 1]))
        data_3d = data_loss
        data_loss = lambda kp: data_3d(kp) + cfg.w_view * _weighted_mean(
            _geman_mcclure(_reprojection_m2(kp, pix, K, w2c, m_per_px), cfg.robust_sigma), pix_w)

    fitted = _optimise(model, params, data_loss, cfg)
    err = lambda kp: _weighted_mean(jnp.linalg.norm(kp - target, axis=-1), weights)
    return _finish(model, fitted, err, cfg)


@functools.partial(jax.jit, static_argnames=("model", "cfg", "mesh"))
def _fit3d(model, cfg, target, weights, *view, mesh):
    out = jax.vmap(_fit3d_one, in_axes=(None, 0, 0, 0, None))(model, target, weights, view or None, cfg)
    return _constrain(out, mesh)


def fit3d(model, target, weights, cfg=FitConfig(), mesh=None, view=None):
    """Fit `model` to 3D keypoint sequences (one jit per model, config, mesh and shape).

    target: (B, T, 17, 3) metres, world Z up; weights: (B, T, 17) confidences (0 = missing).
    view: optional input view (pix (B, T, 17, 2), weights (B, T, 17), K (B, T, 3, 3), w2c
    (B, T, 4, 4)) whose observed keypoints the body's projection should also match: a robust 2D
    term (Geman–McClure, `cfg.robust_sigma`) weighted `cfg.w_view`, in metres at the target's depth.
    mesh: optional single-process `jax.sharding.Mesh` with a 'data' axis: the sequences are split
    over it (B padded inside to a multiple of its size; the outputs are sharded over 'data' when B
    is such a multiple). Returns a dict: `params` (the model's pytree batched over (B, T)),
    `keypoints` (B, T, 17, 3), `error` (B,) weighted mean keypoint distance in metres, `floor` (B,)
    floor height (z), and with `cfg.vposer` `latent` (B, T, 32), whose decoding is the body pose.
    """
    chex.assert_rank(target, 4)
    chex.assert_shape(weights, target.shape[:-1])
    if view is not None:
        pix, pix_w, K, w2c = view
        chex.assert_shape(pix, target.shape[:-1] + (2,))
        chex.assert_shape(pix_w, target.shape[:-1])
        chex.assert_shape(K, target.shape[:2] + (3, 3))
        chex.assert_shape(w2c, target.shape[:2] + (4, 4))
    return _on_mesh(_fit3d, (model, cfg), (target, weights, *(view or ())), mesh)


def _fit2d_one(model, pix, weights, K, w2c, cfg):
    T = pix.shape[0]
    c2w = cameras.invert_rigid(w2c)
    centre = c2w[:, :3, 3]
    f = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
    # Depth from similar triangles on the torso (shoulder-to-hip) length.
    rest = model.keypoints(model.init_params((), 1))[0]
    torso3d = jnp.linalg.norm(skeleton.mid_hip(rest) - rest[_SHOULDERS].mean(0))
    hip2d = skeleton.mid_hip(pix)
    torso2d = jnp.linalg.norm(hip2d - pix[:, _SHOULDERS].mean(1), axis=-1)
    depth = f * torso3d / jnp.maximum(torso2d, 1e-3)
    depth = jnp.median(depth)  # one robust depth per sequence: per-frame ratios are noisy
    ray = cameras.pixels_to_rays(hip2d[:, None], K)[:, 0]
    ray_w = jnp.einsum("tij,tj->ti", c2w[:, :3, :3], jnp.concatenate([ray, jnp.ones((T, 1))], -1))
    hip_w = centre + depth * ray_w
    # Upright (world Z) and facing the camera, or away from it when the left shoulder is on the
    # image left (a person facing the camera shows their left on the image right).
    up = jnp.array([0.0, 0.0, 1.0])
    to_cam = centre - hip_w
    to_cam = to_cam - (to_cam @ up)[:, None] * up
    to_cam = to_cam / jnp.maximum(jnp.linalg.norm(to_cam, axis=-1, keepdims=True), 1e-8)
    facing = jnp.sign(pix[:, skeleton.INDEX["l_shoulder"], 0] - pix[:, skeleton.INDEX["r_shoulder"], 0])
    fwd = jnp.where(facing[:, None] < 0, -to_cam, to_cam)
    left = jnp.cross(up, fwd)
    D = jnp.stack([left, fwd, jnp.broadcast_to(up, fwd.shape)], -1)  # world body frame (T, 3, 3)
    m_left, m_up = _body_up(rest)
    Bm = jnp.stack([m_left, jnp.cross(m_left, m_up), m_up], -1)  # model body frame
    R = D @ Bm.T
    anchor = jnp.broadcast_to(hip_w[:, None], (T, 4, 3))
    w_anchor = jnp.array([0.0, 0.0, 1.0, 1.0])  # hips only: place the mid-hip on the ray
    params = _init_from_rotations(model, R, anchor, jnp.broadcast_to(w_anchor, (T, 4)), T)

    def data_loss(kp):
        return _weighted_mean(_geman_mcclure(_reprojection_m2(kp, pix, K, w2c, depth / f), cfg.robust_sigma),
                              weights)

    fitted = _optimise(model, params, data_loss, cfg)
    err = lambda kp: _weighted_mean(jnp.sqrt(_reprojection_m2(kp, pix, K, w2c, depth / f)) * f[:, None] / depth,
                                    weights)
    return _finish(model, fitted, err, cfg)


@functools.partial(jax.jit, static_argnames=("model", "cfg", "mesh"))
def _fit2d(model, cfg, pix, weights, K, w2c, mesh):
    out = jax.vmap(_fit2d_one, in_axes=(None, 0, 0, 0, 0, None))(model, pix, weights, K, w2c, cfg)
    return _constrain(out, mesh)


def fit2d(model, pix, weights, K, w2c, cfg=FitConfig(), mesh=None):
    """SMPLify-style fit of `model` to single-view 2D keypoints with known cameras.

    pix: (B, T, 17, 2) pixels; weights: (B, T, 17); K: (B, T, 3, 3); w2c: (B, T, 4, 4), world Z up;
    mesh as in `fit3d`. Returns the dict of `fit3d`, with `error` (B,) the weighted mean
    reprojection error in pixels.
    """
    chex.assert_rank(pix, 4)
    chex.assert_shape(weights, pix.shape[:-1])
    chex.assert_shape(K, pix.shape[:2] + (3, 3))
    chex.assert_shape(w2c, pix.shape[:2] + (4, 4))
    return _on_mesh(_fit2d, (model, cfg), (pix, weights, K, w2c), mesh)
