"""The virtual camera ring shared by Stage-1 SDS, Stage-2 data and lifting (docs/design.md).

View 0 is the input (possibly moving) camera; views 1..V-1 are cameras on a horizontal circle
around the subject's frame-0 pelvis P, at the input camera's frame-0 distance and height, evenly
spaced in azimuth and looking at P. Stage-1 SDS keeps them static; Stage-2 data and lifting
translate them with the pelvis track estimated from the input view (`window_ring`). Model space
of every ring view is the pixel space of the virtual intrinsics A_v = diag(s₀, s₀, 1).
"""
import chex
import jax.numpy as jnp
import numpy as np
from scipy.ndimage import gaussian_filter1d

from anylift_jax import skeleton
from anylift_jax.geometry import cameras, epipolar
from anylift_jax.geometry.rotations import skew

# Size prior (metres) that turns the input's 2D size into a camera distance at lifting: the
# COCO-17 keypoint extent (ankles to eyes) of a standing adult of about 1.7 m stature.
PERSON_HEIGHT = 1.45
# Detector confidence below which a keypoint counts as missing (the lifting config's default).
SCORE_THRESHOLD = 0.3
# Gaussian σ (frames) of the mid-hip ray the moving ring follows (`subject_track`).
TRACK_SIGMA = 2.0
# Weight of the cameras' mean image-up in `camera_up` against their image x-axes (per frame, mean
# squared cosine): it decides only the direction the x-axes leave free (a camera that never pans).
UP_PRIOR = 0.01


def ring_cameras(w2c_in, pelvis0, num_views):
    """Input trajectory (T, 4, 4) and frame-0 pelvis (3,) -> all views' w2c (V, T, 4, 4).

    World is Z up. The ring keeps the input camera's frame-0 horizontal distance and height
    relative to P; view v sits at azimuth +v·360°/V from the input camera.
    """
    chex.assert_rank(w2c_in, 3)
    chex.assert_shape(pelvis0, (3,))
    T = w2c_in.shape[0]
    eye0 = cameras.invert_rigid(w2c_in[0])[:3, 3]
    offset = eye0 - pelvis0
    radius = jnp.linalg.norm(offset[:2])
    az0 = jnp.arctan2(offset[1], offset[0])
    az = az0 + 2.0 * jnp.pi * jnp.arange(1, num_views) / num_views
    eyes = jnp.stack([pelvis0[0] + radius * jnp.cos(az), pelvis0[1] + radius * jnp.sin(az),
                      jnp.full_like(az, eye0[2])], -1)
    ring = cameras.look_at(eyes, jnp.broadcast_to(pelvis0, eyes.shape))
    ring = jnp.broadcast_to(ring[:, None], (num_views - 1, T, 4, 4))
    return jnp.concatenate([w2c_in[None], ring], 0)


def ring_intrinsics(scale0, center0, num_views):
    """(V, 3, 3) model intrinsics: the input view's own A₀, then diag(s₀, s₀, 1) for the ring."""
    a0 = epipolar.affine_intrinsics(scale0, center0)
    ring = epipolar.affine_intrinsics(jnp.full((num_views - 1,), scale0), jnp.zeros((num_views - 1, 2)))
    return jnp.concatenate([a0[None], ring], 0)


def window_ring(w2c, track, num_views):
    """The ring lifting places for a window: input cameras w2c (T, 4, 4) and the estimated pelvis
    in each frame's camera coordinates track (T, 3) (`subject_track`) -> all views' w2c
    (V, T, 4, 4), the pelvis track in world coordinates P (T, 3) and the input camera's frame-0
    distance to it d₀ ().

    Views 1..V-1 form the ring around P₀ and are translated with P_t − P₀ (orientation fixed), so
    a walker or runner stays near the centre of every ring view instead of crossing it or
    passing a static ring camera within the window. Stage-2 training data places its rings the
    same way, from the noisy input view, so the model learns to generate the views of a ring that
    follows the estimate, off the true pelvis by the estimate's error, and triangulation of its
    samples corrects that error.
    """
    chex.assert_equal_shape_prefix([w2c, track], 1)
    world = cameras.transform(cameras.invert_rigid(w2c), track[:, None])[:, 0]  # (T, 3)
    ring = ring_cameras(w2c, world[0], num_views)
    rot, shift = ring[1:, :, :3, :3], world - world[0]
    ring = ring.at[1:, :, :3, 3].add(-jnp.einsum("vtij,tj->vti", rot, shift))
    return ring, world, jnp.linalg.norm(track[0])


def estimate_pelvis0(w2c0, scale0, center0, height=PERSON_HEIGHT):
    """Frame-0 pelvis estimate (3,) and camera distance d₀ from the input view alone.

    The frame-0 bounding box is 1/s₀ ray units tall, so a person of keypoint extent `height`
    metres stands at depth ≈ height · s₀ along the mid-hip ray c₀.
    """
    point_cam = jnp.concatenate([center0, jnp.ones((1,))]) * (height * scale0)
    pelvis = cameras.transform(cameras.invert_rigid(w2c0), point_cam[None])[0]
    return pelvis, jnp.linalg.norm(point_cam)


def camera_up(c2w):
    """The world's up direction (3,) estimated from a camera trajectory c2w (T, 4, 4) alone. numpy.

    The ring is horizontal, but archives come in any world frame (MegaSaM writes the first
    camera's). Hand-held and tripod cameras hardly roll, so up is nearly perpendicular to every
    frame's image x-axis: it is the unit vector least aligned with them, the mean image-up (−y)
    settling the direction they leave free and the sign. Its error is the roll, plus the mean
    pitch when the camera never pans.
    """
    x = c2w[:, :3, 0].astype(np.float64)
    mean_up = -c2w[:, :3, 1].astype(np.float64).mean(0)
    mean_up /= np.linalg.norm(mean_up)
    A = x.T @ x / len(x) + UP_PRIOR * (np.eye(3) - np.outer(mean_up, mean_up))
    up = np.linalg.eigh(A)[1][:, 0]
    return up if up @ mean_up > 0 else -up


def up_rotation(up):
    """The smallest rotation (3, 3) taking the unit vector up (3,) to +Z. numpy."""
    z = np.array([0.0, 0.0, 1.0])
    axis, c = np.cross(up, z), float(up @ z)
    K = np.asarray(skew(axis), np.float64)
    if c < -1.0 + 1e-9:  # upside down: half a turn about x
        return np.diag([1.0, -1.0, -1.0])
    return np.eye(3) + K + K @ K / (1.0 + c)


def _box(rays, valid):
    """Corners (T, 2), (T, 2) of the box around the valid rays (T, K, 2) of each frame (±inf if none)."""
    return (np.where(valid[..., None], rays, np.inf).min(1), np.where(valid[..., None], rays, -np.inf).max(1))


def subject_depths(rays, valid, height=PERSON_HEIGHT, window=31):
    """Per-frame camera depth (T,) of the subject from its keypoint extent, robust to pose.

    rays: (T, K, 2) normalised image coordinates, valid: (T, K). A single frame's bounding box
    shrinks when the person crouches or turns; the running median over `window` frames of
    height / extent varies slowly, so consecutive lifting windows get consistent scales. numpy.
    """
    lo, hi = _box(rays, valid)
    extent = (hi - lo).max(-1)
    depth = np.where(np.isfinite(extent) & (extent > 0), height / np.where(extent > 0, extent, 1.0), np.nan)
    T, half = len(depth), window // 2
    out = np.array([np.nanmedian(depth[max(0, t - half):t + half + 1]) for t in range(T)])
    known = np.isfinite(out)
    return np.interp(np.arange(T), np.flatnonzero(known), out[known]).astype(np.float32)


def camera_features(w2c_views, distance):
    """(V, T, 4, 4) -> (V, T, 12): each view relative to the input camera's frame 0, / distance."""
    rel = w2c_views @ cameras.invert_rigid(w2c_views[0, 0])
    return cameras.extrinsics_features(rel, distance)


def subject_track(rays, valid, depths, sigma=TRACK_SIGMA):
    """The subject's pelvis (T, 3) estimated in each frame's input-camera coordinates: the mid-hip
    ray at the size prior's depth (T,) (`subject_depths`). rays (T, K, 2), valid (T, K). numpy.

    The ray is taken where both hips are seen, interpolated across the other frames (a clip with
    no such frame uses the centre of the seen keypoints' box) and Gaussian-smoothed over `sigma`
    frames, so that detector noise does not shake the ring cameras that follow it (`window_ring`).
    """
    body = slice(0, skeleton.NUM_JOINTS)
    rays, valid = rays[:, body], valid[:, body]
    known = valid[:, skeleton.L_HIP] & valid[:, skeleton.R_HIP]
    center = skeleton.mid_hip(rays)
    if not known.any():
        lo, hi = _box(rays, valid)
        center, known = (lo + hi) / 2, valid.any(1)
    t = np.arange(len(rays))
    center = np.stack([np.interp(t, np.flatnonzero(known), center[known, i]) for i in range(2)], -1)
    if sigma > 0:
        center = gaussian_filter1d(center, sigma, axis=0, mode="nearest")
    return (np.concatenate([center, np.ones_like(center[:, :1])], -1) * depths[:, None]).astype(np.float32)
