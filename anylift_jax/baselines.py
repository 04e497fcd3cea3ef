"""Baselines the evaluation compares against (issue 7).

`backproject`: the naive lifter — every frame's keypoints are put at one depth, chosen so that
the frame's bounding box spans a person of `views.PERSON_HEIGHT` metres, and carried into the
world by the known camera. It knows the camera trajectory but nothing about motion or 3D pose.
"""
import numpy as np

from anylift_jax import views
from anylift_jax.data.normalize import rays


def backproject(clip, score_threshold=0.3, height=views.PERSON_HEIGHT):
    """World keypoints (T, 17, 3) of an `archive.Clip` by fixed-height depth back-projection."""
    u = rays(clip.keypoints.astype(np.float64), clip.intrinsics.astype(np.float64))
    valid = clip.scores > score_threshold
    lo = np.where(valid[..., None], u, np.inf).min(1)
    hi = np.where(valid[..., None], u, -np.inf).max(1)
    size = (hi - lo).max(-1)
    size = np.where(np.isfinite(size) & (size > 0), size, np.nan)
    # Frames without any valid keypoint take the nearest known depth.
    depth = height / size
    known = np.flatnonzero(np.isfinite(depth))
    depth = np.interp(np.arange(len(depth)), known, depth[known])
    cam = np.concatenate([u, np.ones_like(u[..., :1])], -1) * depth[:, None, None]
    c2w = clip.cam_c2w.astype(np.float64)
    world = np.einsum("tij,tnj->tni", c2w[:, :3, :3], cam) + c2w[:, None, :3, 3]
    return world.astype(np.float32)
