"""Model space: how a 2D keypoint clip becomes the array a diffusion model sees (docs/design.md).

Every function here is array-generic: numpy in, numpy out (the grain loader stays free of jax, so
its worker processes never touch an accelerator), jax in, jax out (jit-able, for lifting).

1. Rays u = K⁻¹ (p, 1): focal length and image size drop out.
2. x = s (u − c): c = mid-hip ray of the reference frame, s = 1 / longer side of the reference
   frame's bounding box of valid body keypoints (ray units), so the first-frame person is 1 unit tall,
   centred at 0. The reference frame is frame 0; if frame 0 lacks a hip it is the first frame
   that has both hips (frame 0 again if none has). In model coordinates a clip is a view through a
   virtual camera with intrinsics A = `model_intrinsics(params)`, so epipolar lines in model space
   are those of `fundamental(A_a, A_b, T_ab)`.
3. Root/local decomposition (Sec. 2.1, "Hybrid Data Source Training"): `decompose` keeps the hips
   (root X^r) and makes every other joint relative to the mid-hip (local pose X^l); `compose`
   adds the mid-hip back (global motion X^g).

HOI clips carry M object keypoints after the 17 body joints (K' = 17 + M, Sec. 2.2). They are
mapped by the same affine map but do not enter the scale, which stays the person's (the object
may be missing or hidden in the input view), and they are not decomposed: like the root they stay
in model coordinates (a pushed object does not follow the pelvis).

The local-projection source X^proj of Sec. 2.1 is 3D motion with its horizontal pelvis motion
removed (`recenter`), seen through training-set camera trajectories taken relative to their subject
(`subject_relative`) or through a small predefined set (`predefined_trajectories`).
"""
from typing import NamedTuple

import chex
import jax.numpy as jnp
import numpy as np

from anylift_jax import skeleton
from anylift_jax.data import cameras

_EPS = 1e-8
# 1 for joints of the local pose, 0 for the two hips (the root), shaped to broadcast over (…, K, 2).
_LOCAL = np.array([[0.0] if k in skeleton.HIPS else [1.0] for k in range(skeleton.NUM_JOINTS)],
                  np.float32)


def _local(num_keypoints):
    """`_LOCAL` for K' = 17 + M keypoints: object keypoints (past the body joints) are not local."""
    return np.pad(_LOCAL, ((0, num_keypoints - skeleton.NUM_JOINTS), (0, 0)))


# Predefined X^proj viewpoints: camera distance and height (m), orbit speed (rad/s).
PROJ_DISTANCE = 4.0
PROJ_HEIGHT = 1.3
PROJ_ORBIT_SPEED = np.deg2rad(20.0)


class NormParams(NamedTuple):
    """Per-clip affine map from rays to model space, x = scale · (u − center)."""
    scale: chex.Array   # (…,)
    center: chex.Array  # (…, 2)


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, np.generic, float, int)) for a in arrays) else jnp


def rays(pix, K):
    """Pixels (…, N, 2) and intrinsics (…, 3, 3) -> normalised image coordinates (…, N, 2)."""
    xp = _xp(pix, K)
    ph = xp.concatenate([pix, xp.ones_like(pix[..., :1])], -1)
    uh = xp.einsum("...ij,...nj->...ni", xp.linalg.inv(K), ph)
    return uh[..., :2] / uh[..., 2:]


def reference_frame(valid):
    """(…, T, K) bool -> (…,) index of frame 0, or of the first frame with both hips if frame 0
    lacks one (frame 0 if none has)."""
    xp = _xp(valid)
    hips = valid[..., skeleton.L_HIP] & valid[..., skeleton.R_HIP]
    return xp.where(hips[..., 0], 0, xp.argmax(hips, axis=-1))


def normalize(pix, K, valid):
    """Pixels (…, T, K, 2), intrinsics (…, T, 3, 3), valid (…, T, K) bool -> (x, NormParams).

    x (…, T, K, 2); NormParams scale (…,), center (…, 2). Invalid keypoints are mapped like the
    others; callers mask them. Only the 17 body joints enter the scale (K may be 17 + M).
    """
    chex.assert_equal_shape_prefix([pix, K, valid], valid.ndim - 1)
    xp = _xp(pix, K, valid)
    u = rays(pix, K)
    r = reference_frame(valid)[..., None, None, None]
    ur = xp.take_along_axis(u, r, axis=-3)[..., 0, :, :]
    vr = xp.take_along_axis(valid[..., None], r, axis=-3)[..., 0, :, :]
    c = skeleton.mid_hip(ur)
    body = slice(0, skeleton.NUM_JOINTS)
    lo = xp.where(vr[..., body, :], ur[..., body, :], xp.inf).min(-2)
    hi = xp.where(vr[..., body, :], ur[..., body, :], -xp.inf).max(-2)
    scale = (1.0 / xp.maximum((hi - lo).max(-1), _EPS)).astype(u.dtype)
    return scale[..., None, None, None] * (u - c[..., None, None, :]), NormParams(scale, c.astype(u.dtype))


def denormalize(x, params, K):
    """Exact inverse of `normalize`: model coordinates (…, T, K, 2) -> pixels (…, T, K, 2)."""
    xp = _xp(x, params.scale, params.center, K)
    u = x / params.scale[..., None, None, None] + params.center[..., None, None, :]
    uh = xp.concatenate([u, xp.ones_like(u[..., :1])], -1)
    ph = xp.einsum("...ij,...nj->...ni", K, uh)
    return ph[..., :2] / ph[..., 2:]


def model_intrinsics(params):
    """A (…, 3, 3) = [[s, 0, −s cx], [0, s, −s cy], [0, 0, 1]]: model coords = A (u, 1)."""
    xp = _xp(params.scale, params.center)
    s = xp.asarray(params.scale)
    z, o = xp.zeros_like(s), xp.ones_like(s)
    cx, cy = params.center[..., 0], params.center[..., 1]
    return xp.stack([
        xp.stack([s, z, -s * cx], -1),
        xp.stack([z, s, -s * cy], -1),
        xp.stack([z, z, o], -1),
    ], -2)


def decompose(x):
    """Global (…, K, 2) -> root/local (…, K, 2): hips kept, other joints minus the mid-hip
    (object keypoints past the 17 body joints kept)."""
    return x - _local(x.shape[-2]) * skeleton.mid_hip(x)[..., None, :]


def compose(x):
    """Root/local (…, K, 2) -> global X^g (…, K, 2): exact inverse of `decompose`."""
    return x + _local(x.shape[-2]) * skeleton.mid_hip(x)[..., None, :]


def camera_centers(w2c):
    """World positions (…, 3) of the cameras (…, 4, 4)."""
    return _xp(w2c).linalg.inv(w2c)[..., :3, 3]


def camera_distance(w2c, point):
    """Distance (…,) from cameras w2c (…, 4, 4) to world points (…, 3): d0 of the design doc."""
    xp = _xp(w2c, point)
    pc = xp.einsum("...ij,...j->...i", w2c[..., :3, :3], point) + w2c[..., :3, 3]
    return xp.linalg.norm(pc, axis=-1)


def camera_condition(w2c, d0, reference=None):
    """Camera condition C (…, T, 12) of Sec. 2.1: [R | t / d0] of E_t E_ref⁻¹, flattened row-major.

    w2c (…, T, 4, 4); d0 (…) the frame-0 camera-to-mid-hip distance; `reference` (…, 4, 4)
    defaults to each trajectory's frame 0, which makes this `geometry.cameras.trajectory_features`.
    Several views pass the input view's frame-0 camera: E_{v,t} E_{0,0}⁻¹.
    """
    xp = _xp(w2c, d0) if reference is None else _xp(w2c, d0, reference)
    ref = w2c[..., :1, :, :] if reference is None else reference[..., None, :, :]
    rel = w2c @ xp.linalg.inv(ref)
    d0 = xp.asarray(d0, rel.dtype)[..., None, None, None]
    rel = xp.concatenate([rel[..., :3, :3], rel[..., :3, 3:] / d0], -1)
    return rel.reshape(rel.shape[:-2] + (12,))


def epipole(w2c, partner_center, params):
    """Epipole (…, T, 3) of partner cameras in this view's model coordinates, homogeneous, unit norm.

    w2c (…, T, 4, 4) this view's cameras; partner_center (…, T, 3) world positions of the
    partner's camera centres; params of (…) clips. The epipole is the partner centre seen from this camera, A (R C + t);
    it is at infinity (third component 0) when the partner lies in this camera's principal plane.
    """
    xp = _xp(w2c, partner_center, params.scale, params.center)
    pc = xp.einsum("...ij,...j->...i", w2c[..., :3, :3], partner_center) + w2c[..., :3, 3]
    e = xp.einsum("...ij,...j->...i", model_intrinsics(params)[..., None, :, :], pc)
    return e / xp.linalg.norm(e, axis=-1, keepdims=True)


def condition_lines(x, e):
    """Line condition L (…, T, K, 3): lines through the joints x (…, T, K, 2) and e (…, T, 3).

    e: homogeneous epipole per frame (broadcast, e.g. (3,) for all frames) in the same model
    coordinates.
    Lines (a, b, c), a x + b y + c = 0, with a² + b² = 1 and a ≥ 0 (b ≥ 0 where a = 0); a joint
    on the epipole gets (0, 0, 0). `geometry.epipolar.lines_through_epipole`, for numpy too.
    """
    xp = _xp(x, e)
    p = xp.concatenate([x, xp.ones_like(x[..., :1])], -1)
    e = xp.broadcast_to(xp.asarray(e, x.dtype), x.shape[:-2] + (3,))[..., None, :]
    line = xp.cross(p, xp.broadcast_to(e, p.shape))
    a, b = line[..., 0], line[..., 1]
    n2 = a * a + b * b
    ok = n2 > _EPS * _EPS
    sign = xp.where((a < 0) | ((a == 0) & (b < 0)), -1.0, 1.0)
    inv = xp.where(ok, sign / xp.sqrt(xp.where(ok, n2, 1.0)), 0.0)
    return (line * inv[..., None]).astype(x.dtype)


def recenter(kp3d):
    """X^proj motion: 3D keypoints (T, K, 3) with the pelvis's horizontal motion removed.

    The mid-hip stays at x = y = 0 in every frame; heights, heading and the pose are kept.
    """
    xp = _xp(kp3d)
    pel = skeleton.mid_hip(kp3d)
    shift = xp.concatenate([pel[..., :2], xp.zeros_like(pel[..., 2:])], -1)
    return kp3d - shift[..., None, :]


def subject_relative(w2c, pelvis):
    """Camera trajectory (T, 4, 4) re-expressed for a subject held at the origin by `recenter`.

    w2c (T, 4, 4) saw a subject whose pelvis moved along `pelvis` (T, 3); the result sees a
    re-centred motion from the same place relative to the pelvis: w2c · Translate(pelvis_xy).
    """
    xp = _xp(w2c, pelvis)
    zero, one = xp.zeros_like(pelvis[..., 0]), xp.ones_like(pelvis[..., 0])
    translate = xp.stack([
        xp.stack([one, zero, zero, pelvis[..., 0]], -1),
        xp.stack([zero, one, zero, pelvis[..., 1]], -1),
        xp.stack([zero, zero, one, zero], -1),
        xp.stack([zero, zero, zero, one], -1),
    ], -2)
    return w2c @ translate


def predefined_trajectories(kp3d, fps=30.0):
    """The small predefined X^proj viewpoint set for a re-centred motion (T, K, 3): name -> (T, 4, 4).

    Static cameras in front, left, behind and right of the frame-0 facing direction and a slow
    orbit starting in front, all PROJ_DISTANCE from the pelvis axis at PROJ_HEIGHT, looking at the
    frame-0 pelvis.
    """
    kp3d = np.asarray(kp3d, np.float32)
    T = kp3d.shape[0]
    fwd = cameras.facing(kp3d[0])
    heading = np.arctan2(fwd[1], fwd[0])
    target = np.array([0.0, 0.0, skeleton.mid_hip(kp3d[0])[2]], np.float32)
    angles = {"front": 0.0, "left": 0.5 * np.pi, "back": np.pi, "right": 1.5 * np.pi}
    paths = {name: np.full(T, a) for name, a in angles.items()}
    paths["orbit"] = PROJ_ORBIT_SPEED * np.arange(T) / fps
    out = {}
    for name, a in paths.items():
        a = heading + a
        eye = np.stack([PROJ_DISTANCE * np.cos(a), PROJ_DISTANCE * np.sin(a),
                        np.full(T, PROJ_HEIGHT)], -1)
        out[name] = cameras.look_at(eye, np.broadcast_to(target, eye.shape)).astype(np.float32)
    return out
