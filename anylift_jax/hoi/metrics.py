"""HOI metrics (Sec. 3.2: "accurate contact and minimal penetration"), world frame Z up, floor
z = 0, metres in, millimetres out (degrees and % where named).

Object poses are (rot6d (…, T, 6), transl (…, T, 3), scale (…)) in the convention of
`hoi.objects` (x = s R p + t); `category` is an `ObjectCategory`. Distances to the object are
to its posed mesh surface, computed in the canonical frame and multiplied by the scale.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax import skeleton
from anylift_jax.geometry.rotations import geodesic_angle, rot6d_to_matrix
from anylift_jax.hoi.objects import load_category, surface_distance, to_canonical, to_world, winding_number

M_TO_MM = 1000.0
WRISTS = (skeleton.INDEX["l_wrist"], skeleton.INDEX["r_wrist"])


def distance_to_object(points, pose, category):
    """Distance (…, T, N) in metres from world points (…, T, N, 3) to the posed mesh surface, and
    the points' winding numbers (…, T, N) (> ½ inside the object)."""
    rot6d, transl, scale = pose
    s = jnp.asarray(scale)[..., None]
    local = to_canonical(points, rot6d, transl, s)
    tri = jnp.asarray(category.triangles)
    return surface_distance(local, tri) * s[..., None], winding_number(local, tri)


def contact_distance(kp3d, pose, category, contact):
    """Hand–object contact distance: per frame the distance from the nearer wrist to the object
    surface, averaged over contact frames. kp3d (…, T, 17, 3), contact (…, T) {0, 1} -> (…,) mm
    (NaN without contact frames)."""
    chex.assert_shape(kp3d, (..., skeleton.NUM_JOINTS, 3))
    d, _ = distance_to_object(kp3d[..., WRISTS, :], pose, category)
    per_frame = jnp.min(d, -1) * M_TO_MM
    c = jnp.asarray(contact, per_frame.dtype)
    return jnp.sum(per_frame * c, -1) / jnp.sum(c, -1)


def ground_penetration(pose, category):
    """Depth of the object's lowest mesh vertex below the floor z = 0, per frame: (…, T) mm, 0
    when the object is on or above the floor."""
    rot6d, transl, scale = pose
    v = to_world(jnp.asarray(category.vertices), rot6d, transl, jnp.asarray(scale)[..., None])
    return jnp.maximum(-jnp.min(v[..., 2], -1), 0.0) * M_TO_MM


def body_penetration(kp3d, pose, category):
    """Coarse body–object penetration: per frame the largest depth (distance to the surface) of a
    body keypoint inside the object mesh (winding number > ½). kp3d (…, T, 17, 3) -> (…, T) mm.
    Keypoints are joint centres, not the skin, so this underestimates true mesh penetration."""
    chex.assert_shape(kp3d, (..., skeleton.NUM_JOINTS, 3))
    d, w = distance_to_object(kp3d, pose, category)
    return jnp.max(jnp.where(w > 0.5, d, 0.0), -1) * M_TO_MM


def pose_error(pred, truth):
    """Object pose error of pred against truth poses: per-frame rotation geodesic angle (…, T)
    degrees and translation error (…, T) mm, and the relative scale error (…,) in %."""
    (r6, t, s), (r6_gt, t_gt, s_gt) = pred, truth
    chex.assert_equal_shape([r6, r6_gt])
    chex.assert_equal_shape([t, t_gt])
    rot = jnp.rad2deg(geodesic_angle(rot6d_to_matrix(r6), rot6d_to_matrix(r6_gt)))
    trans = jnp.linalg.norm(t - t_gt, axis=-1) * M_TO_MM
    return rot, trans, jnp.abs(jnp.asarray(s) / jnp.asarray(s_gt) - 1.0) * 100.0


# Columns of `evaluate_object`: key -> (column name, unit, digits), as `evaluate.METRICS`.
OBJECT_METRICS = {
    "object_rot": ("Object rot.", "deg", 2),
    "object_transl": ("Object transl.", "mm", 1),
    "object_transl_root": ("Object transl. to root", "mm", 1),
    "object_scale": ("Object scale", "%", 2),
    "contact": ("Hand-object contact", "mm", 1),
    "ground_penetration": ("Object below floor", "mm", 1),
    "body_penetration": ("Body in object", "mm", 1),
}


def evaluate_object(kp3d, pred, truth, category, truth_kp3d=None):
    """HOI metrics of one lifted clip as {key: float} (keys and units in OBJECT_METRICS).

    kp3d: (T, 17, 3) lifted body keypoints; pred, truth: mappings with object_rot6d (T, 6),
    object_transl (T, 3), object_scale () (lifting-output keys; truth may add contact (T,) {0, 1},
    else the contact metric is NaN); category: a name or `ObjectCategory`. Pose errors are means
    over frames; contact uses the lifted body and object on the true contact frames; penetrations
    are means over frames of the lifted object. truth_kp3d (T, 17, 3): the true body, for the
    object's translation relative to the mid-hip (`object_transl_root`; where the object is with
    respect to the person, free of the world-trajectory error the absolute translation carries).
    """
    cat = load_category(category) if isinstance(category, str) else category
    keys = ("object_rot6d", "object_transl", "object_scale")
    p = tuple(np.asarray(pred[k], np.float32) for k in keys)
    t = tuple(np.asarray(truth[k], np.float32) for k in keys)
    contact = np.asarray(truth["contact"] if "contact" in truth else np.zeros(len(p[0])), np.float32)
    values = _object_terms(np.asarray(kp3d, np.float32), p, t, contact, cat)
    if "contact" not in truth:
        values["contact"] = np.nan
    if truth_kp3d is not None:
        rel = lambda kp, tr: tr - skeleton.mid_hip(np.asarray(kp, np.float32))
        values["object_transl_root"] = np.mean(np.linalg.norm(rel(kp3d, p[1]) - rel(truth_kp3d, t[1]), axis=-1)) * M_TO_MM
    return {k: float(v) for k, v in values.items()}


@functools.partial(jax.jit, static_argnames="cat")
def _object_terms(kp3d, pred, truth, contact, cat):
    rot, trans, scale = pose_error(pred, truth)
    return {"object_rot": jnp.mean(rot), "object_transl": jnp.mean(trans), "object_scale": scale,
            "contact": contact_distance(kp3d, pred, cat, contact),
            "ground_penetration": jnp.mean(ground_penetration(pred, cat)),
            "body_penetration": jnp.mean(body_penetration(kp3d, pred, cat))}
