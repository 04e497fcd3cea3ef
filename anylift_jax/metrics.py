"""Evaluation metrics of world-grounded 3D human motion (Sec. 3 of the paper), COCO-17 keypoints.

Inputs are keypoint sequences (…, T, 17, 3) in metres in the world frame (Z up); leading batch
dimensions are allowed where a metric's docstring says (…). Errors come back in millimetres unless
stated. The world-grounded metrics follow WHAM (Shin et al., CVPR 2024, `lib/eval/eval_utils.py`
of github.com/yohanshin/WHAM) and GVHMR (Shen et al., SIGGRAPH Asia 2024,
`hmr4d/utils/eval/eval_utils.py` of github.com/zju3dv/GVHMR), whose definitions agree:

- PA-MPJPE: per frame, the similarity (s, R, t) that best maps the prediction's joints onto the
  truth's, then the mean joint distance (`pa_mpjpe`). MVLift instead fits one similarity to the
  mid-hip-relative joints of all frames at once (`pa_mpjpe_sequence`).
- W-MPJPE100 / WA-MPJPE100: the sequence is cut into segments of 100 frames (the last one may be
  shorter); each segment of the prediction is moved by the similarity fitted on the joints of its
  *first two frames* (W) or of *all its frames* (WA), then the per-frame joint error is taken.
- RTE: the root trajectory is rigidly aligned (no scale) over the whole sequence; the per-frame
  root error is divided by the length of the ground-truth root path and given in %.
- Jitter: |third finite difference| · fps³ averaged over joints, divided by 10, i.e. in units of
  10 m/s³ (both repositories divide by 10 and report the number unlabelled).
- Foot sliding: displacement of the predicted feet between consecutive frames in which the
  ground-truth foot is in contact (GVHMR: ground-truth foot displacement < 1 cm per frame), mm.
  GVHMR uses four SMPL foot vertices; we have no mesh and use the two ankle keypoints, and also
  require the ground-truth ankle to be near its lowest height of the clip (see `foot_contact`).

Metrics of the reference implementation MVLift that we keep: bone-length consistency and the 2D
reprojection error in pixels. Every metric is a `jax.jit` function (compiled once per shape).
"""
import chex
import jax
import jax.numpy as jnp

from anylift_jax import skeleton
from anylift_jax.geometry import cameras
from anylift_jax.geometry.align import apply_similarity, procrustes_align, umeyama

M_TO_MM = 1000.0
SEGMENT = 100  # frames per W-/WA-MPJPE segment ("100" in W-MPJPE100)
CONTACT_STEP = 0.01  # m per frame: GVHMR's ground-truth foot-contact displacement threshold
CONTACT_HEIGHT = 0.10  # m above the ankle's lowest height in the clip


def _joint_error(a, b):
    """Mean over joints of the Euclidean distance, (…, K, 3) -> (…,) in mm."""
    return jnp.linalg.norm(a - b, axis=-1).mean(-1) * M_TO_MM


def _check(pred, truth):
    chex.assert_equal_shape([pred, truth])
    chex.assert_shape(pred, (..., skeleton.NUM_JOINTS, 3))


def root_relative(kp):
    """Joints relative to the mid-hip, (…, K, 3) -> (…, K, 3)."""
    return kp - skeleton.mid_hip(kp)[..., None, :]


@jax.jit
def mpjpe(pred, truth):
    """Mid-hip-relative MPJPE per frame: (…, T, K, 3) twice -> (…, T) mm."""
    _check(pred, truth)
    return _joint_error(root_relative(pred), root_relative(truth))


@jax.jit
def pa_mpjpe(pred, truth):
    """Procrustes-aligned MPJPE with one similarity per frame (WHAM/GVHMR): (…, T) mm."""
    _check(pred, truth)
    return _joint_error(procrustes_align(pred, truth), truth)


@jax.jit
def pa_mpjpe_sequence(pred, truth):
    """MVLift's PA-MPJPE: one similarity over all mid-hip-relative joints of the clip.

    (…, T, K, 3) twice -> (…,) mm, the mean over frames and joints after that alignment.
    """
    _check(pred, truth)
    p, g = root_relative(pred), root_relative(truth)
    flat = p.shape[:-3] + (-1, 3)
    aligned = procrustes_align(p.reshape(flat), g.reshape(flat)).reshape(p.shape)
    return _joint_error(aligned, g).mean(-1)


def _segment_error(pred, truth, fit_frames):
    """Per-frame error after moving each SEGMENT-frame segment of `pred` by the similarity fitted
    on the joints of its first `fit_frames` frames (None: all its frames). (…, T) mm."""
    errors = []
    for start in range(0, pred.shape[-3], SEGMENT):
        p = pred[..., start:start + SEGMENT, :, :]
        g = truth[..., start:start + SEGMENT, :, :]
        n = p.shape[-3] if fit_frames is None else min(fit_frames, p.shape[-3])
        flat = p.shape[:-3] + (-1, 3)
        s, R, t = umeyama(p[..., :n, :, :].reshape(flat), g[..., :n, :, :].reshape(flat))
        moved = apply_similarity(s, R, t, p.reshape(flat)).reshape(p.shape)
        errors.append(_joint_error(moved, g))
    return jnp.concatenate(errors, -1)


@jax.jit
def w_mpjpe(pred, truth):
    """W-MPJPE100 (WHAM/GVHMR): each 100-frame segment aligned by its first two frames.

    (…, T, K, 3) twice -> (…, T) mm.
    """
    _check(pred, truth)
    return _segment_error(pred, truth, 2)


@jax.jit
def wa_mpjpe(pred, truth):
    """WA-MPJPE100 (WHAM/GVHMR): each 100-frame segment aligned by all its frames.

    (…, T, K, 3) twice -> (…, T) mm.
    """
    _check(pred, truth)
    return _segment_error(pred, truth, None)


@jax.jit
def rte(pred, truth):
    """Root translation error in % of the ground-truth path length (GVHMR), per frame: (…, T).

    The mid-hip trajectory of `pred` is rigidly aligned (rotation + translation, no scale) to the
    truth's over the whole clip; each frame's root error is divided by the summed length of the
    truth's root steps. Undefined (inf/nan) when the truth's root does not move.
    """
    _check(pred, truth)
    p, g = skeleton.mid_hip(pred), skeleton.mid_hip(truth)
    aligned = procrustes_align(p, g, with_scale=False)
    path = jnp.linalg.norm(jnp.diff(g, axis=-2), axis=-1).sum(-1)
    return jnp.linalg.norm(aligned - g, axis=-1) / path[..., None] * 100.0


@jax.jit
def jitter(kp, fps):
    """Jitter of a motion (GVHMR): mean over joints of |third difference| · fps³ / 10.

    (…, T, K, 3), fps: scalar -> (…, T − 3) in units of 10 m/s³.
    """
    chex.assert_shape(kp, (..., skeleton.NUM_JOINTS, 3))
    jerk = (kp[..., 3:, :, :] - 3 * kp[..., 2:-1, :, :]
            + 3 * kp[..., 1:-2, :, :] - kp[..., :-3, :, :])
    return jnp.linalg.norm(jerk, axis=-1).mean(-1) * fps**3 / 10.0


@jax.jit
def foot_contact(truth):
    """Ground-truth ankle contact from frame t to t + 1: (…, T, K, 3) -> (…, T − 1, 2) bool.

    In contact from frame t to t + 1 when the ankle moves less than CONTACT_STEP (GVHMR's 1 cm per
    frame at 30 fps) and is, at both frames, within CONTACT_HEIGHT of the lowest height any
    ankle reaches in the clip; the height test keeps a foot held still in the air out.
    """
    ankles = truth[..., skeleton.ANKLES, :]
    step = jnp.linalg.norm(jnp.diff(ankles, axis=-3), axis=-1)
    z = ankles[..., 2]
    low = z <= z.min(axis=(-2, -1), keepdims=True) + CONTACT_HEIGHT
    return (step < CONTACT_STEP) & low[..., 1:, :] & low[..., :-1, :]


@jax.jit
def foot_sliding(pred, truth):
    """Mean displacement of the predicted ankles over ground-truth contact steps, (…,) mm.

    GVHMR's foot-sliding metric on ankle keypoints (see `foot_contact`); nan without contacts.
    """
    _check(pred, truth)
    contact = foot_contact(truth)
    step = jnp.linalg.norm(jnp.diff(pred[..., skeleton.ANKLES, :], axis=-3), axis=-1)
    return (step * contact).sum((-2, -1)) / contact.sum((-2, -1)) * M_TO_MM


@jax.jit
def bone_length_std(kp):
    """Standard deviation over time of each limb's length (skeleton.LIMB_BONES), (…, 8) mm.

    MVLift's bone-length consistency; the limbs are the bones of fixed length in a real body.
    """
    chex.assert_shape(kp, (..., skeleton.NUM_JOINTS, 3))
    a, b = zip(*skeleton.LIMB_BONES)
    lengths = jnp.linalg.norm(kp[..., a, :] - kp[..., b, :], axis=-1)
    return lengths.std(axis=-2) * M_TO_MM


@jax.jit
def reprojection_error(kp3d, kp2d, K, c2w, scores=None):
    """Mean pixel distance between the projected 3D keypoints and observed 2D keypoints, (…,).

    kp3d (…, T, K, 3) world; kp2d (…, T, K, 2) pixels; K (3, 3) or (…, T, 3, 3);
    c2w (…, T, 4, 4) OpenCV axes; scores (…, T, K): keypoints with score 0 are left out (their
    coordinates may be NaN). Averaged over the observed keypoints of all frames.
    """
    chex.assert_shape(kp3d, (..., skeleton.NUM_JOINTS, 3))
    chex.assert_shape(kp2d, kp3d.shape[:-1] + (2,))
    seen = jnp.ones(kp2d.shape[:-1]) if scores is None else (scores > 0).astype(kp3d.dtype)
    seen = seen * jnp.isfinite(kp2d).all(-1)
    pix, _ = cameras.project(kp3d, K, cameras.invert_rigid(c2w))
    dist = jnp.linalg.norm(pix - jnp.nan_to_num(kp2d), axis=-1)
    return (dist * seen).sum((-2, -1)) / seen.sum((-2, -1))
