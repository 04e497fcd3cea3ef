"""Baselines the evaluation compares against (issue 7).

`backproject`: the naive lifter — every frame's keypoints are put at one depth, chosen so that
the frame's bounding box spans a person of `views.PERSON_HEIGHT` metres, and carried into the
world by the known camera. It knows the camera trajectory but nothing about motion or 3D pose.

`smplify`: SMPLify-style optimisation — the body model fitted to the single view's 2D keypoints
through the known cameras (`body.fit.fit2d`: robust reprojection term, pose and shape priors,
temporal smoothness), its COCO-17 keypoints as the prediction.

`run(name, archive_dir, out_dir)` writes lifting-format outputs for every clip of an archive, so
`anylift_jax.evaluate` compares them like any lifter (`--baseline NAME` there).
"""
import os

import numpy as np

from anylift_jax import views
from anylift_jax.data.normalize import rays
from anylift_jax.io import archive


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


def smplify(clip, body, score_threshold=0.3):
    """World keypoints (T, 17, 3) of an `archive.Clip`: `body` fitted to its 2D keypoints."""
    import jax.numpy as jnp  # noqa: PLC0415  (backproject needs no jax)

    from anylift_jax.body import fit  # noqa: PLC0415

    weights = np.where(clip.scores > score_threshold, clip.scores, 0.0).astype(np.float32)
    w2c = np.linalg.inv(clip.cam_c2w.astype(np.float64)).astype(np.float32)
    res = fit.fit2d(body, jnp.asarray(clip.keypoints[None]), jnp.asarray(weights[None]),
                    jnp.asarray(clip.intrinsics[None]), jnp.asarray(w2c[None]))
    return np.asarray(res["keypoints"][0], np.float32)


BASELINES = ("backproject", "smplify")


def run(name, archive_dir, out_dir, body_name="anny", body_path=None):
    """Write `<clip>.npz` (lifting output format) of baseline `name` for every clip of an archive.

    Clips whose output already validates are kept (resumable); unreadable clips are skipped, as in
    lifting. Returns (number written, [(path, reason) of the skipped bad clips]).
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline '{name}'; have {BASELINES}")
    body = None
    if name == "smplify":
        from anylift_jax.body.model import get_body_model  # noqa: PLC0415

        body = get_body_model(body_name, body_path)
    clips, errors = archive.read_archive(archive_dir)
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for c in clips:
        path = os.path.join(out_dir, f"{c.clip_id}.npz")
        try:
            archive.validate_output(path)
            continue
        except archive.ArchiveError:
            pass
        kp = backproject(c) if body is None else smplify(c, body)
        name_out = "none" if body is None else body.name
        archive.write_output(path, {"keypoints3d": kp, "body_model": np.str_(name_out)})
        written += 1
    return written, errors
