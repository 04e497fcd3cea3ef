"""World frames of lifting: the upright frame of a clip's cameras, the mirror image, and back."""
import dataclasses

import jax
import numpy as np

from anylift_jax import skeleton, views
from anylift_jax.data.mocap import resample_times
from anylift_jax.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix


def upright(clip):
    """The clip in a world whose Z is its cameras' up (`views.camera_up`), and the rotation
    (3, 3) from its own world to that one. The ring and the body fit need Z up; archives come in
    any world frame."""
    R = views.up_rotation(views.camera_up(clip.cam_c2w)).astype(np.float32)
    c2w = clip.cam_c2w.copy()
    c2w[:, :3] = R @ c2w[:, :3]
    return dataclasses.replace(clip, cam_c2w=c2w), R


def mirrored(clip):
    """The clip's mirror image: the world reflected in its y = 0 plane (`mocap.mirror`), each
    camera with its image x-axis flipped so it stays right-handed, the keypoints flipped in each
    image (through K, so any principal point) and their left and right swapped. Its object, if
    any, is dropped: a reflected object has the other handedness, which no model saw.

    A mirrored scene is a valid scene and a mirrored motion a valid motion (Stage-2 training
    mirrors half its renders), so lifting the mirror image and mirroring the result back
    (`mocap.mirror`) is a second estimate of the same motion, with a different model bias.
    """
    flip_world, flip_cam = np.diag([1.0, -1.0, 1.0, 1.0]), np.diag([-1.0, 1.0, 1.0, 1.0])
    K = clip.intrinsics.astype(np.float64)
    to_mirror = K @ flip_cam[:3, :3] @ np.linalg.inv(K)  # (T, 3, 3) pixel map of the flip
    homogeneous = np.concatenate([clip.keypoints, np.ones_like(clip.keypoints[..., :1])], -1)
    pix = np.einsum("tij,tkj->tki", to_mirror, homogeneous)
    pix = pix[..., :2] / pix[..., 2:]
    scores = clip.scores[:, skeleton.FLIP_PERM]
    return dataclasses.replace(
        clip, keypoints=np.where(scores[..., None] > 0, pix[:, skeleton.FLIP_PERM], 0.0).astype(np.float32),
        scores=scores, cam_c2w=(flip_world @ clip.cam_c2w.astype(np.float64) @ flip_cam).astype(np.float32),
        object_keypoints=None, object_scores=None, object_category=None)


def to_clip_world(out, R, body=None, params=None):
    """Outputs lifted in the upright world (`upright`, rotation R) turned back into the clip's:
    keypoints3d and object pose, and the body parameters `params` of `body` when given."""
    out = dict(out, keypoints3d=out["keypoints3d"] @ R)
    if params is not None:
        out.update(body.output_arrays(jax.tree.map(np.asarray, body.rotated(params, R.T))))
    if "object_rot6d" in out:
        turned = R.T @ np.asarray(rot6d_to_matrix(out["object_rot6d"]))
        out.update(object_rot6d=np.asarray(matrix_to_rot6d(turned)), object_transl=out["object_transl"] @ R)
    return out


# Output keys with one value per clip, not per frame (`to_source_rate` leaves them).
PER_CLIP_KEYS = frozenset({"body_model", "shape", "betas", "object_scale", "quality"})


def _points(x, scores, lo, w):
    """Keypoints (N, K, 2) and scores (N, K) between frames lo and lo + 1: interpolated where
    both are detected, the nearer one's where only that one is, missing otherwise."""
    hi = np.minimum(lo + 1, len(x) - 1)
    a, b = scores[lo] > 0, scores[hi] > 0
    wk = w[:, None]
    both = a & b
    near_a, near_b = a & ~b & (wk < 0.5), b & ~a & (wk >= 0.5)
    pts = np.where(both[..., None], (1 - wk[..., None]) * x[lo] + wk[..., None] * x[hi],
                   np.where(near_a[..., None], x[lo], np.where(near_b[..., None], x[hi], 0.0)))
    sc = np.where(both, (1 - wk) * scores[lo] + wk * scores[hi],
                  np.where(near_a, scores[lo], np.where(near_b, scores[hi], 0.0)))
    return pts.astype(np.float32), sc.astype(np.float32)


def resampled(clip, fps):
    """The clip at `fps` frames per second, linear in time: keypoints (`_points`), intrinsics and
    camera centres interpolated, camera rotations slerped. Lifting runs at the rate of the model's
    training motion, so a 25 or 60 fps video is neither slow nor fast motion to it; the outputs
    go back to the clip's own frames with `to_source_rate`."""
    from scipy.spatial.transform import Rotation  # noqa: PLC0415

    lo, w = resample_times(clip.num_frames, clip.fps / fps)
    hi = np.minimum(lo + 1, clip.num_frames - 1)
    c2w = clip.cam_c2w.astype(np.float64)
    rel = Rotation.from_matrix(np.einsum("tji,tjk->tik", c2w[lo, :3, :3], c2w[hi, :3, :3]))
    turn = Rotation.from_rotvec(rel.as_rotvec() * w[:, None]).as_matrix()
    out = np.tile(np.eye(4), (len(lo), 1, 1))
    out[:, :3, :3] = c2w[lo, :3, :3] @ turn
    out[:, :3, 3] = (1 - w[:, None]) * c2w[lo, :3, 3] + w[:, None] * c2w[hi, :3, 3]
    K = clip.intrinsics.astype(np.float64)
    keypoints, scores = _points(clip.keypoints, clip.scores, lo, w)
    obj = {}
    if clip.object_keypoints is not None:
        okp, osc = _points(clip.object_keypoints, clip.object_scores, lo, w)
        obj = dict(object_keypoints=okp, object_scores=osc)
    return dataclasses.replace(
        clip, keypoints=keypoints, scores=scores, cam_c2w=out.astype(np.float32),
        intrinsics=((1 - w[:, None, None]) * K[lo] + w[:, None, None] * K[hi]).astype(np.float32),
        fps=float(fps), **obj)


def to_source_rate(out, num_frames, src_fps, fps):
    """Lifting outputs at `fps` back at the `num_frames` frames of a clip at src_fps: every
    per-frame array interpolated linearly in time (axis-angle and 6D rotations too: neighbouring
    frames differ little), the per-clip ones (`PER_CLIP_KEYS`) kept."""
    lo, w = resample_times(len(out["keypoints3d"]), fps / src_fps)
    if len(lo) < num_frames:  # the clip's last frames lie past the last resampled one: hold it
        lo, w = np.append(lo, [lo[-1]] * (num_frames - len(lo))), np.append(w, [1.0] * (num_frames - len(w)))
    lo, w = lo[:num_frames], w[:num_frames]

    def back(x):
        x = np.asarray(x)
        hi = np.minimum(lo + 1, len(x) - 1)
        ww = w.reshape((-1,) + (1,) * (x.ndim - 1))
        return ((1 - ww) * x[lo] + ww * x[hi]).astype(x.dtype)

    return {k: (v if k in PER_CLIP_KEYS else back(v)) for k, v in out.items()}
