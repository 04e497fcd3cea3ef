"""Model-length windows of a clip (shared with Stage-1 synthesis): cut, normalise to model space
with each window's own s₀, c₀ and estimated pelvis track, and blend back with cross-fades."""
import dataclasses

import chex
import numpy as np

from anylift_jax import views
from anylift_jax.data.normalize import decompose, normalize, rays


@dataclasses.dataclass(frozen=True)
class Window:
    """One model-length window of a clip, ready for the network (numpy, model space)."""
    clip: int          # index of the clip in the batch being lifted
    frames: np.ndarray  # (T,) source frame indices (padding repeats the last frame)
    x: np.ndarray       # (T, K, 2) decomposed model-space input view (K = 17, or 17 + M for HOI)
    valid: np.ndarray   # (T, K) observed keypoints (score above threshold, real frames)
    mask: np.ndarray    # (T,) real frames
    w2c: np.ndarray     # (T, 4, 4)
    scale: np.ndarray   # () s₀
    center: np.ndarray  # (2,) c₀
    track: np.ndarray   # (T, 3) estimated pelvis in each frame's camera coordinates (views.subject_track)


def window_starts(num_frames, length, overlap):
    """Start indices covering [0, num_frames) with windows of `length` overlapping by ≥ `overlap`."""
    if num_frames <= length:
        return [0]
    stride = length - overlap
    starts = list(range(0, num_frames - length, stride)) + [num_frames - length]
    return sorted(set(starts))


def model_keypoints(clip, num_object_keypoints):
    """Pixels (T, K, 2) and scores (T, K) of a clip as a model with M = num_object_keypoints takes
    them: the 17 body joints, then (M > 0) the clip's M object keypoints, or M with score 0 when
    the clip has no object."""
    if not num_object_keypoints:
        return clip.keypoints, clip.scores
    T, M = clip.keypoints.shape[0], num_object_keypoints
    if clip.object_keypoints is None:
        obj, obj_scores = np.zeros((T, M, 2), np.float32), np.zeros((T, M), np.float32)
    else:
        chex.assert_shape(clip.object_keypoints, (T, M, 2))
        obj, obj_scores = clip.object_keypoints, clip.object_scores
    return np.concatenate([clip.keypoints, obj], 1), np.concatenate([clip.scores, obj_scores], 1)


def make_windows(clip_index, clip, length, overlap, score_threshold, num_object_keypoints=0):
    """Cut one `archive.Clip` into `Window`s; short clips are padded (mask 0).

    num_object_keypoints: M of an HOI model (`model_keypoints`); the windows then hold K = 17 + M
    keypoints. The depth and scale of the ring come from the body joints alone.
    """
    T = clip.keypoints.shape[0]
    pix, scores = model_keypoints(clip, num_object_keypoints)
    w2c = np.linalg.inv(clip.cam_c2w).astype(np.float32)
    observed = clip.scores > score_threshold
    body_rays = rays(clip.keypoints, clip.intrinsics)
    track = views.subject_track(body_rays, observed, views.subject_depths(body_rays, observed))
    out = []
    for start in window_starts(T, length, overlap):
        idx = np.arange(start, start + length)
        mask = (idx < T).astype(np.float32)
        idx = np.minimum(idx, T - 1)
        valid = (scores[idx] > score_threshold) & (mask[:, None] > 0)
        x, params = normalize(pix[idx], clip.intrinsics[idx], valid)
        out.append(Window(clip_index, idx, decompose(x).astype(np.float32), valid.astype(np.float32), mask,
                          w2c[idx], np.float32(params.scale), params.center.astype(np.float32),
                          track[idx]))
    return out


def blend_weights(length, overlap):
    """(length,) cross-fade weights: ramps over the first and last `overlap` frames of a window."""
    t = np.arange(length, dtype=np.float32)
    return np.clip(np.minimum(t + 1, length - t) / (overlap + 1), 1e-3, 1.0)
