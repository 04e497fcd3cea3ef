"""World frames of lifting: the upright frame of a clip's cameras, the mirror image, and back."""
import dataclasses

import jax
import numpy as np

from anylift_jax import skeleton, views
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
