"""3D keypoints -> 2D detections: projection through a camera trajectory, detector-like corruption,
and clips in the keypoint-archive v1 format (docs/keypoint-archive.md), so that synthetic data and
real video keypoints go through the same readers.

numpy, seeded by a `np.random.Generator`: this runs in the data pipeline, not under jit.
"""
import dataclasses

import chex
import numpy as np

from anylift_jax import skeleton
from anylift_jax.data import cameras

# Points closer to the camera plane than this (metres) cannot be seen.
NEAR = 0.05
# Left/right limb pairs a detector may confuse: arms (elbows, wrists) and legs (knees, ankles).
LIMBS = (((7, 8), (9, 10)), ((13, 14), (15, 16)))


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """Detector-like corruption of projected keypoints. Sizes are fractions of the frame's
    person bounding box (longer side of the box around the clean projected keypoints).

    sigma: std of the isotropic Gaussian pixel noise per axis.
    score_width: score = exp(-½ (|error| / (score_width · bbox))²), so confidence falls where the
      realised noise is large (1 for an exact point).
    dropout: probability that a keypoint is missed (score 0).
    swap: per frame and limb (arms, legs), probability that its left and right joints trade places.
    """
    sigma: float = 0.02
    score_width: float = 0.05
    dropout: float = 0.02
    swap: float = 0.005


CLEAN = NoiseConfig(sigma=0.0, dropout=0.0, swap=0.0)


def project(kp3d, w2c, K):
    """Pixels (T, N, 2) and camera depths (T, N) of world points kp3d (T, N, 3) seen through
    w2c (T, 4, 4) with intrinsics K (3, 3) or (T, 3, 3). Pixels of points with depth <= NEAR are NaN."""
    K = np.broadcast_to(np.asarray(K, np.float64), (len(kp3d), 3, 3))
    pc = np.einsum("tij,tnj->tni", w2c[:, :3, :3].astype(np.float64), kp3d) + w2c[:, None, :3, 3]
    depth = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.where((depth > NEAR)[..., None], pc[..., :2] / depth[..., None], np.nan)
    return np.einsum("tij,tnj->tni", K[:, :2, :2], uv) + K[:, None, :2, 2], depth


def inside(pix, image_size):
    """(T, N) bool: pixel (T, N, 2) lies in the image [0, width) × [0, height)."""
    w, h = image_size
    with np.errstate(invalid="ignore"):
        return (pix[..., 0] >= 0) & (pix[..., 0] < w) & (pix[..., 1] >= 0) & (pix[..., 1] < h)


def bbox_size(pix):
    """(T,) longer side of the bounding box of each frame's finite keypoints (T, N, 2); 0 if none."""
    size = (np.fmax.reduce(pix, axis=1) - np.fmin.reduce(pix, axis=1)).max(-1)  # fmin/fmax skip NaN
    return np.nan_to_num(size)


def corrupt(pix, rng, noise, image_size):
    """Detector-like corruption of clean pixels (T, 17, 2) (NaN = not visible) -> noisy pixels
    (T, 17, 2) and scores (T, 17) in [0, 1]; score 0 for dropped, out-of-image and invisible points."""
    T = len(pix)
    bbox = bbox_size(pix)[:, None]
    err = rng.standard_normal(pix.shape) * (noise.sigma * bbox)[..., None]
    noisy = pix + err
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.linalg.norm(err, axis=-1) / (noise.score_width * bbox)
    scores = np.exp(-0.5 * np.nan_to_num(rel) ** 2)
    scores[rng.random(scores.shape) < noise.dropout] = 0.0
    swapped = rng.random((T, len(LIMBS))) < noise.swap
    for limb, pairs in enumerate(LIMBS):
        for a, b in pairs:
            t = swapped[:, limb]
            noisy[t, a], noisy[t, b] = noisy[t, b].copy(), noisy[t, a].copy()
            scores[t, a], scores[t, b] = scores[t, b].copy(), scores[t, a].copy()
    scores[~inside(noisy, image_size)] = 0.0
    return noisy, scores


def render_clip(kp3d, w2c, K, image_size, rng, noise, fps=30.0):
    """A keypoint-archive v1 clip of 3D keypoints kp3d (T, 17, 3) filmed by w2c (T, 4, 4) with
    intrinsics K (3, 3) or (T, 3, 3) in an image of `image_size` (width, height).

    Returns the archive keys: keypoints (T, 17, 2) float32 (NaN behind the camera), scores (T, 17)
    float32, intrinsics float32 as given, cam_c2w (T, 4, 4) float32, image_size (2,) int64,
    fps () float64.
    """
    T = len(kp3d)
    chex.assert_shape(kp3d, (T, skeleton.NUM_JOINTS, 3))
    chex.assert_shape(w2c, (T, 4, 4))
    K = np.asarray(K, np.float32)
    if K.shape not in ((3, 3), (T, 3, 3)):
        raise ValueError(f"intrinsics: expected shape (3, 3) or ({T}, 3, 3), got {K.shape}")
    pix, _ = project(kp3d, w2c, K)
    keypoints, scores = corrupt(pix, rng, noise, image_size)
    return {
        "keypoints": keypoints.astype(np.float32),
        "scores": scores.astype(np.float32),
        "intrinsics": K,
        "cam_c2w": cameras.invert_rigid(np.asarray(w2c, np.float64)),
        "image_size": np.asarray(image_size, np.int64),
        "fps": np.asarray(fps, np.float64),
    }
