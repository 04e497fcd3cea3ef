"""Synthetic human–object interaction (HOI) sequences: shipped mocap + a scripted object with
contact constraints, rendered through cameras into keypoint-archive v1 clips (Sec. 2.2 training
data; the paper reprojects HOI mocap, which we do not have, so we script the object instead).

Scenarios (`SCENARIOS`):
- carry_box: a box held between the wrists for the whole clip, at a fixed place in front of the
  body, its yaw following the body's facing. The arms are re-posed by two-bone IK so the wrists
  sit on its side faces.
- push_box, move_chair, push_table: the object stands on the floor until a contact start t0, then
  slides on the floor in front of the person, hands on its back (the torso leans forward while
  pushing); the arms reach for it during the RAMP seconds before t0. Contact lasts to the end of
  the clip: the walker keeps walking forward, so releasing the object would walk into it.

The object frame's +X is the person's forward direction while in contact. The place in front of
the body is fixed per sequence and chosen so that the grips are within reach (a fraction `reach` of
the arm length) over the contact frames.

numpy, seeded by a `np.random.Generator`, like the rest of the data pipeline.
"""
import dataclasses

import chex
import numpy as np
from scipy.ndimage import gaussian_filter1d

from anylift_jax import skeleton
from anylift_jax.data import cameras, mocap, render2d
from anylift_jax.hoi.objects import load_category

UP = np.array([0.0, 0.0, 1.0])
# Wrist keypoint to palm surface (m): the wrist sits this far out from the gripped face.
HAND_OFFSET = 0.04
# Time constant (frames) of the Gaussian smoothing of the body frame the object follows (the gait
# sways pelvis and facing).
BODY_SMOOTH = 6.0
# Carried objects are held with the grips this far above the median hip height (m).
CARRY_ABOVE_HIP = 0.2
# Seconds over which the hands reach for a floor object before contact starts.
RAMP = 0.4
# Joints the torso lean rotates about the mid-hip: face, shoulders, elbows, wrists.
UPPER = tuple(range(11))
L_ARM = (skeleton.INDEX["l_shoulder"], skeleton.INDEX["l_elbow"], skeleton.INDEX["l_wrist"])
R_ARM = (skeleton.INDEX["r_shoulder"], skeleton.INDEX["r_elbow"], skeleton.INDEX["r_wrist"])
WRISTS = (L_ARM[2], R_ARM[2])


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A scripted interaction.

    grips: (2, 3) canonical points held by the left and right wrist; normals: (2, 3) outward unit
    normals of the gripped faces (the wrist sits HAND_OFFSET out along them). carried: lifted to
    grip height for the whole clip, else sliding on the floor from a sampled contact start.
    scale: range of the object scale; lean_deg: forward torso lean while in contact; reach: the
    grips are placed this fraction of the full arm length from the shoulders (pushing: near 1).
    """
    category: str
    grips: tuple
    normals: tuple
    carried: bool
    scale: tuple
    lean_deg: float
    reach: float


SCENARIOS = {
    "carry_box": Scenario("box", ((0.0, 0.225, 0.2), (0.0, -0.225, 0.2)),
                          ((0.0, 1.0, 0.0), (0.0, -1.0, 0.0)), True, (0.8, 1.1), 0.0, 0.9),
    # a crate about 1 m tall: hands on its back face near the top
    "push_box": Scenario("box", ((-0.175, 0.1, 0.36), (-0.175, -0.1, 0.36)),
                         ((-1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)), False, (2.3, 2.6), 30.0, 0.98),
    "move_chair": Scenario("chair", ((-0.225, 0.17, 0.86), (-0.225, -0.17, 0.86)),
                           ((-1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)), False, (0.95, 1.1), 15.0, 0.95),
    # a table pushed by the near edge of its top, hands on the top surface
    "push_table": Scenario("table", ((-0.55, 0.25, 0.75), (-0.55, -0.25, 0.75)),
                           ((0.0, 0.0, 1.0), (0.0, 0.0, 1.0)), False, (1.0, 1.1), 25.0, 0.98),
}


@dataclasses.dataclass(frozen=True)
class HoiSequence:
    """One synthetic HOI sequence, world frame Z up, metres, floor z = 0.

    kp3d (T, 17, 3) human keypoints (arms re-posed to hold the object); object_rot6d (T, 6),
    object_transl (T, 3), object_scale () the object pose (x = s R p + t); object_kp3d (T, M, 3)
    its keypoints; contact (T,) bool hand–object contact; category and scenario names.
    """
    kp3d: np.ndarray
    object_rot6d: np.ndarray
    object_transl: np.ndarray
    object_scale: np.ndarray
    object_kp3d: np.ndarray
    contact: np.ndarray
    category: str
    scenario: str


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rotation_about(axis, angle):
    """Rodrigues: rotations (…, 3, 3) by `angle` (…,) radians about unit `axis` (…, 3)."""
    K = np.zeros(axis.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    a = np.asarray(angle)[..., None, None]
    return np.eye(3) + np.sin(a) * K + (1.0 - np.cos(a)) * (K @ K)


def two_bone_ik(root, target, pole, upper, lower):
    """Middle and end joints (…, 3) of a two-bone chain from `root` (…, 3) reaching for `target`
    (…, 3), bending towards `pole` (…, 3) (a direction), bone lengths `upper`, `lower` (m).
    Targets out of reach are approached along the same line as far as the chain extends."""
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(upper - lower) + 1e-6, (upper + lower) * (1.0 - 1e-6))
    along = (upper ** 2 - lower ** 2 + dist ** 2) / (2.0 * dist)
    side = _unit(pole - np.sum(pole * u, -1, keepdims=True) * u)
    mid = root + along * u + np.sqrt(np.maximum(upper ** 2 - along ** 2, 0.0)) * side
    return mid, root + dist * u


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def rot6d(R):
    """(…, 3, 3) -> (…, 6): first two columns (numpy twin of `rotations.matrix_to_rot6d`)."""
    return np.concatenate([R[..., :, 0], R[..., :, 1]], -1)


def _in_body_frame(points, origin, fwd, left):
    """World points (T, …, 3) -> (forward, left, up) coordinates relative to origin (T, 3)."""
    d = points - origin.reshape(origin.shape[:1] + (1,) * (points.ndim - 2) + (3,))
    expand = (slice(None),) + (None,) * (points.ndim - 2)
    return np.stack([np.sum(d * fwd[expand], -1), np.sum(d * left[expand], -1), d[..., 2]], -1)


def make_sequence(rng, kp3d, scenario, fps=30.0):
    """A `HoiSequence` of the motion kp3d (T, 17, 3) (Z up, floor z = 0) and `scenario` (a key of
    SCENARIOS)."""
    chex.assert_shape(kp3d, (None, skeleton.NUM_JOINTS, 3))
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown HOI scenario '{scenario}'; have {list(SCENARIOS)}")
    sc = SCENARIOS[scenario]
    cat = load_category(sc.category)
    kp = np.asarray(kp3d, np.float64)
    T = len(kp)
    ramp = max(int(round(RAMP * fps)), 1)
    if sc.carried:
        t0, weight = 0, np.ones(T)
    else:
        if T < 2 * ramp + 2:
            raise ValueError(f"scenario '{scenario}' needs at least {2 * ramp + 2} frames, got {T}")
        t0 = int(rng.integers(ramp, max(T // 2, ramp + 1)))
        weight = smoothstep((np.arange(T) - (t0 - ramp)) / ramp)
    contact = np.arange(T) >= t0
    scale = rng.uniform(*sc.scale)

    # The object's heading while in contact: the smoothed facing (the gait sways it).
    fwd = _unit(gaussian_filter1d(cameras.facing(kp), BODY_SMOOTH, axis=0, mode="nearest"))
    left = np.cross(UP, fwd)

    # Lean the upper body forward about the left axis through the mid-hip.
    R_lean = rotation_about(left, np.deg2rad(sc.lean_deg) * weight)
    hip = skeleton.mid_hip(kp)[:, None]
    kp[:, UPPER] = hip + np.einsum("tij,tnj->tni", R_lean, kp[:, UPPER] - hip)

    # The object follows the (smoothed) chest rather than the pelvis, so that it stays in front of
    # a body that bows or leans. Carried objects also follow its height; floor objects stay on
    # the floor.
    origin = gaussian_filter1d(kp[:, skeleton.SHOULDERS].mean(1), BODY_SMOOTH, axis=0,
                               mode="nearest")
    origin[:, 2] = origin[:, 2] - np.median(origin[:, 2]) if sc.carried else 0.0

    # Grip offsets in the object (= body) frame, and the object's base height and forward offset.
    grips = scale * np.asarray(sc.grips) + HAND_OFFSET * np.asarray(sc.normals)  # (2, 3)
    lengths = [(np.median(np.linalg.norm(kp[:, a] - kp[:, b], axis=-1)),
                np.median(np.linalg.norm(kp[:, b] - kp[:, c], axis=-1))) for a, b, c in (L_ARM, R_ARM)]
    base = (np.median(kp[:, skeleton.HIPS, 2]) + CARRY_ABOVE_HIP - grips[:, 2].mean()
            if sc.carried else 0.0)
    shoulders = _in_body_frame(kp[contact][:, skeleton.SHOULDERS], origin[contact], fwd[contact],
                               left[contact])  # (Tc, 2, 3)
    reach = sc.reach * np.array([u + l for u, l in lengths])
    across = (reach ** 2 - (shoulders[..., 1] - grips[:, 1]) ** 2
              - (shoulders[..., 2] - base - grips[:, 2]) ** 2)
    forward = float(np.median(shoulders[..., 0] - grips[:, 0] + np.sqrt(np.maximum(across, 0.0))))

    # Object pose: rigid in the body frame during contact, still before it.
    R = np.stack([fwd, left, np.broadcast_to(UP, fwd.shape)], -1)  # columns: object x, y, z
    transl = origin + forward * fwd + base * UP
    R[:t0], transl[:t0] = R[t0], transl[t0]
    obj = scale * np.einsum("tij,mj->tmi", R, cat.keypoints) + transl[:, None]

    # Arms: wrists move from their mocap path to the grips as the weight rises; the elbows bend
    # like the mocap's at weight 0 and downwards-outwards when holding.
    for h, (s_i, e_i, w_i) in enumerate((L_ARM, R_ARM)):
        grip = np.einsum("tij,j->ti", R, grips[h]) + transl
        target = kp[:, w_i] + weight[:, None] * (grip - kp[:, w_i])
        outward = (1.0 if h == 0 else -1.0) * 0.5 * left - UP
        pole = kp[:, e_i] - kp[:, s_i] + weight[:, None] * (outward - (kp[:, e_i] - kp[:, s_i]))
        kp[:, e_i], kp[:, w_i] = two_bone_ik(kp[:, s_i], target, pole, *lengths[h])

    return HoiSequence(
        kp3d=kp.astype(np.float32), object_rot6d=rot6d(R).astype(np.float32),
        object_transl=transl.astype(np.float32), object_scale=np.asarray(scale, np.float32),
        object_kp3d=obj.astype(np.float32), contact=contact, category=sc.category,
        scenario=scenario)


# ------------------------------------------------------------------------------------------------
# Rendering


def self_occluded(points, triangles, eyes, eps=1e-4):
    """(T, M) bool: the segment from the camera centre eyes (T, 3) to points (T, M, 3) crosses a
    triangle (F, 3, 3) of the same object before reaching the point (Möller–Trumbore), i.e. the
    object hides its own keypoint. All in the object's canonical frame; eps (canonical units)
    keeps the faces a keypoint lies on from hiding it."""
    a, e1, e2 = triangles[:, 0], triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    d = points - eyes[:, None]  # (T, M, 3)
    length = np.linalg.norm(d, axis=-1)
    d = d / length[..., None]
    p = np.cross(d[:, :, None], e2)  # (T, M, F, 3)
    det = np.sum(p * e1, -1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = eyes[:, None, None] - a  # (T, 1, F, 3)
    u = np.sum(s * p, -1) * inv
    q = np.cross(s, e1)
    v = np.sum(d[:, :, None] * q, -1) * inv
    dist = np.sum(q * e2, -1) * inv
    # The barycentric slack makes rays through an edge shared by two triangles hit one of them.
    slack = 1e-7
    hit = (ok & (u >= -slack) & (v >= -slack) & (u + v <= 1 + slack) & (dist > 0)
           & (dist < length[..., None] - eps))
    return hit.any(-1)


def render_object(seq, w2c, K, image_size, rng, noise):
    """Object keypoints of `seq` seen through w2c (T, 4, 4), K (3, 3) or (T, 3, 3), with
    detector-like noise (`render2d.NoiseConfig`: sigma, score_width and dropout relative to the
    object's projected bounding box; swaps do not apply to objects).

    Returns the archive keys object_keypoints (T, M, 2) float32, object_scores (T, M) float32 (0
    where self-occluded, behind the camera, dropped or outside the image), object_category.
    """
    T = len(seq.object_kp3d)
    chex.assert_shape(w2c, (T, 4, 4))
    cat = load_category(seq.category)
    pix, _ = render2d.project(seq.object_kp3d.astype(np.float64), w2c, K)
    # Occlusion is tested in the canonical frame: the canonical eye is Rᵀ (c − t) / s.
    c2w = cameras.invert_rigid(np.asarray(w2c, np.float64))
    R = np.stack([seq.object_rot6d[:, :3], seq.object_rot6d[:, 3:],
                  np.cross(seq.object_rot6d[:, :3], seq.object_rot6d[:, 3:])], -1).astype(np.float64)
    eyes = np.einsum("tji,tj->ti", R, c2w[:, :3, 3] - seq.object_transl) / seq.object_scale
    hidden = self_occluded(np.broadcast_to(cat.keypoints, (T,) + cat.keypoints.shape),
                           cat.triangles.astype(np.float64), eyes)
    bbox = render2d.bbox_size(pix)[:, None]
    err = rng.standard_normal(pix.shape) * (noise.sigma * bbox)[..., None]
    noisy = pix + err
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.linalg.norm(err, axis=-1) / (noise.score_width * bbox)
    scores = np.exp(-0.5 * np.nan_to_num(rel) ** 2)
    scores[(rng.random(scores.shape) < noise.dropout) | hidden] = 0.0
    scores[~render2d.inside(noisy, image_size)] = 0.0
    return {
        "object_keypoints": noisy.astype(np.float32),
        "object_scores": scores.astype(np.float32),
        "object_category": np.asarray(seq.category),
    }


def render_hoi(seq, w2c, K, image_size, rng, noise, fps=30.0):
    """A keypoint-archive v1 clip of `seq` filmed by w2c (T, 4, 4) with intrinsics K: the keys of
    `render2d.render_clip` plus those of `render_object`."""
    clip = render2d.render_clip(seq.kp3d, w2c, K, image_size, rng, noise, fps)
    clip.update(render_object(seq, w2c, K, image_size, rng, noise))
    return clip


def ring_views(w2c0, kp3d, num_views):
    """View 0 = the moving camera w2c0 (T, 4, 4); views 1..V-1 static on the horizontal ring
    through its frame-0 centre around the frame-0 pelvis (design.md, "Several views") ->
    (V, T, 4, 4)."""
    pelvis0 = skeleton.mid_hip(kp3d[0])
    eye = cameras.invert_rigid(w2c0[0])[:3, 3]
    offset = eye[:2] - pelvis0[:2]
    ring = cameras.ring(num_views, pelvis0, np.linalg.norm(offset), eye[2],
                        np.arctan2(offset[1], offset[0]))
    return np.stack([w2c0] + [np.broadcast_to(ring[v], w2c0.shape) for v in range(1, num_views)])


def scenarios_of(category):
    """Names of the scenarios that use `category`."""
    return tuple(n for n, s in SCENARIOS.items() if s.category == category)


def hoi_training_clip(rng, category, clip=None, views=1, image_size=(1280, 720),
                      fov_range=(45.0, 75.0), camera="internet", noise=render2d.NoiseConfig(),
                      fps=30.0):
    """One HOI training record with object keypoints concatenated to the human ones (Sec. 2.2).

    A scenario of `category` and (unless `clip` names one) a training clip of `mocap.TRAIN` are
    drawn with `rng`; view 0 is a `camera` trajectory (`cameras.KINDS`), views 1..V-1 `ring_views`.
    Returns the record layout of `data.build` with K' = 17 + M keypoints:
    keypoints (T, V, K', 2) float32 pixels (0 where the score is 0), scores (T, V, K'),
    intrinsics (T, V, 3, 3), w2c (T, V, 4, 4), kp3d (T, K', 3) 3D truth (human then object), and
    the object truth object_rot6d (T, 6), object_transl (T, 3), object_scale (), contact (T,)
    float32, object_category str, num_object_keypoints int, name str.
    """
    names = scenarios_of(category)
    if not names:
        raise ValueError(f"no HOI scenario uses category '{category}'; scenarios: "
                         f"{ {n: s.category for n, s in SCENARIOS.items()} }")
    scenario = names[int(rng.integers(len(names)))]
    clip = mocap.TRAIN[int(rng.integers(len(mocap.TRAIN)))] if clip is None else clip
    seq = make_sequence(rng, mocap.load_shipped(clip), scenario, fps)
    T = len(seq.kp3d)
    K = cameras.sample_intrinsics(rng, *image_size, fov_range)
    w2c = ring_views(cameras.sample_trajectory(rng, seq.kp3d, camera, fps), seq.kp3d, views)
    rendered = [render_hoi(seq, w2c[v], K, image_size, rng, noise, fps) for v in range(views)]
    keypoints = np.stack([np.concatenate([r["keypoints"], r["object_keypoints"]], 1)
                          for r in rendered], 1)
    scores = np.stack([np.concatenate([r["scores"], r["object_scores"]], 1) for r in rendered], 1)
    return {
        "name": f"{clip}/{scenario}",
        "keypoints": np.where(scores[..., None] > 0, keypoints, 0.0).astype(np.float32),
        "scores": scores.astype(np.float32),
        "intrinsics": np.broadcast_to(K, (T, views, 3, 3)).astype(np.float32),
        "w2c": np.swapaxes(w2c, 0, 1).astype(np.float32),
        "kp3d": np.concatenate([seq.kp3d, seq.object_kp3d], 1),
        "object_rot6d": seq.object_rot6d,
        "object_transl": seq.object_transl,
        "object_scale": seq.object_scale,
        "contact": seq.contact.astype(np.float32),
        "object_category": category,
        "num_object_keypoints": load_category(category).num_keypoints,
    }
