"""Objects of HOI clips (Sec. 2.2): whether the model can take a clip's object keypoints, and the
object's pose from its triangulated keypoints."""
import numpy as np

from anylift_jax import hoi
from anylift_jax.hoi.pose import MIN_KEYPOINTS


def object_problem(clip, num_object_keypoints, model_category):
    """Why the model cannot take the clip's object keypoints (a message), or None (it can, or the
    clip has no object). model_category: the category the model was trained on, if known."""
    if clip.object_keypoints is None:
        return None
    category, m = clip.object_category, clip.object_keypoints.shape[1]
    if not num_object_keypoints:
        return "the model takes no object keypoints: objects ignored, the human lifted"
    if category not in hoi.CATEGORIES:
        return f"unknown object category '{category}' (have {list(hoi.CATEGORIES)}): object ignored"
    if model_category and category != model_category:
        return f"the model was trained on '{model_category}' objects, not '{category}': object ignored"
    if m != num_object_keypoints:
        return f"'{category}' clips have {m} object keypoints, the model takes {num_object_keypoints}: object ignored"
    return None


def object_pose(Q, observed, category, hidden_weight):
    """Object pose outputs {object_rot6d (T, 6), object_transl (T, 3), object_scale ()} (numpy,
    world frame) from the triangulated object keypoints Q (T, M, 3) of a clip whose input view
    observes observed (T, M) bool of them; None when no frame observes MIN_KEYPOINTS of them or
    the fit degenerates (no positive scale).

    A keypoint the input view does not observe weighs `hidden_weight` (observed: 1): its 3D
    position rests on the generated views alone, so it decides the pose only in frames with no
    observed keypoints nearby in time (the pose smoothing fills frames from their neighbours).
    """
    if not (observed.sum(1) >= MIN_KEYPOINTS).any():
        return None
    weights = np.where(observed, 1.0, hidden_weight).astype(np.float32)
    out = {k: np.asarray(v) for k, v in hoi.object_pose_from_keypoints(Q, weights, category).items()}
    if not (out["object_scale"] > 0 and all(np.isfinite(v).all() for v in out.values())):
        return None
    return out
