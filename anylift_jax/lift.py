"""Batch lifting of keypoint archives to world-grounded 3D (Sec. 2.2, "Inference on Real-World Videos").

`python -m anylift_jax.lift --config configs/lift/<x>.py --input ARCHIVE --output OUT [--checkpoint DIR]`

Per clip, in the upright frame of its cameras (`upright`; the archive's world may be any frame):
cut into model-length windows (overlapping, blended), normalise each window's input view to model
space, place the virtual ring (docs/design.md), sample the other views with the Stage-2 model
(DDIM, input view inpainted), triangulate all views, average with the same for the clip's mirror
image (`mirrored`), smooth, set the depth by the body's constant size, the planted feet and the
smoothed world track (`track_depth`), move the joints back onto the input view's rays
(`on_input_rays`), fit the body model to them (their image position weighted above their depth),
turn everything back into the archive's world and write `<clip>.npz` per docs/keypoint-archive.md.

HOI (Sec. 2.2): a model with `num_object_keypoints` M > 0 takes K = 17 + M keypoints, the clip's
object keypoints after the body joints (all unobserved when the clip has none). All K are
triangulated; the body joints give `keypoints3d`, the object keypoints Q the object pose
(`hoi.object_pose_from_keypoints`: Umeyama of the category's canonical keypoints to Q, temporally
smoothed), written as object_rot6d, object_transl, object_scale in the world frame.
"""
import argparse
import dataclasses
import functools
import os
import sys
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from scipy import sparse
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.sparse.linalg import spsolve

from anylift_jax import CONFIGS, hoi, sharding, skeleton, views
from anylift_jax.data.mocap import mirror
from anylift_jax.data.normalize import compose, decompose, normalize, rays
from anylift_jax.geometry import triangulate as tri
from anylift_jax.geometry.cameras import project
from anylift_jax.geometry.rotations import matrix_to_rot6d, rot6d_to_matrix
from anylift_jax.hoi.pose import MIN_KEYPOINTS
from anylift_jax.io import archive


# The Stage-2 model the package ships (trained by the command in docs/results.md).
SHIPPED_MODEL = os.path.join(os.path.dirname(__file__), "assets", "models", "stage2_corpus")
SHIPPED_HOI_MODEL = os.path.join(os.path.dirname(__file__), "assets", "models", "hoi_tiny")
DEFAULT_CONFIG = str(CONFIGS / "lift" / "default.py")

# Object-pose weight of an object keypoint the input view does not observe (observed: 1). Its 3D
# position rests on the generated views alone, so it decides the pose only in frames with no
# observed keypoints nearby in time (the pose smoothing fills frames from their neighbours).
HIDDEN_OBJECT_WEIGHT = 1e-3

# Exponent of the across-the-ray weight of a bone in `constant_size_depth` (docs/results.md,
# "What moved the numbers").
IN_PLANE_POWER = 4

# Bone lengths (m) of `skeleton.BONES` of the default Anny body (`body.model`, default shape,
# zero pose), the size prior of `constant_size_depth`.
PRIOR_BONE_LENGTHS = np.array([0.048, 0.048, 0.095, 0.095, 0.304, 0.260, 0.232, 0.260, 0.232, 0.481, 0.481,
                               0.175, 0.378, 0.373, 0.378, 0.373])

# Nearest a triangulated keypoint may lie in front of a ring camera for `consistent` to use its
# projection there, m (the ring's cameras stand metres away).
MIN_VIEW_DEPTH = 0.1

# `planted_feet_depth`. An ankle is planted from frame t to t + 1 when it moves less than
# PLANTED_SPEED and is within PLANTED_HEIGHT of the clip's low ankle height (5th percentile) at
# both: three times GVHMR's 0.3 m/s on the truth, since the lifted feet slide (13 mm per frame
# held-out). Standard deviations of the least squares: PLANTED_STD of a planted ankle's step (m),
# SCALE_STD of a frame's depth factor from 1, SCALE_BEND_STD of its second difference per frame.
PLANTED_SPEED = 0.9
PLANTED_HEIGHT = 0.1
PLANTED_STD = 0.03
SCALE_STD = 0.1
SCALE_BEND_STD = 0.003

# `on_input_rays`: a joint keeps its lifted position where the Gaussian-smoothed indicator of its
# detection is below this (no detection within about three frames at sigma 2).
MIN_RAY_SCORE = 0.1


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


def ring_geometry(w2c, scale, center, track, num_views):
    """The virtual ring of one window (docs/design.md "Several views"), from its input cameras
    w2c (T, 4, 4), s₀ (), c₀ (2,) and estimated pelvis track (T, 3) (`Window.track`) -> all
    views' w2c (V, T, 4, 4), model intrinsics A (V, 3, 3) and camera features (V, T, 12). jax."""
    w2c_v, _, d0 = views.window_ring(w2c, track, num_views)
    return w2c_v, views.ring_intrinsics(scale, center, num_views), views.camera_features(w2c_v, d0)


def triangulate_views(xg, A, w2c_v, valid, view_weight):
    """World keypoints (B, T, K, 3) from every view's global model coordinates xg (B, V, T, K, 2)
    seen through A (B, V, 3, 3) and w2c_v (B, V, T, 4, 4) (`ring_geometry`). The input view
    weighs valid (B, T, K) (1 observed, 0 not), each generated view `view_weight`. jax."""
    B, V, T, K, _ = xg.shape
    weights = jnp.concatenate([valid[:, :, None], jnp.full((B, T, V - 1, K), view_weight)], 2)
    kp3d = tri.triangulate(xg.swapaxes(1, 2), jnp.broadcast_to(A[:, None], (B, T, V, 3, 3)),
                           w2c_v.swapaxes(1, 2), weights)
    chex.assert_shape(kp3d, (B, T, K, 3))
    return kp3d


def consistent(x0, A, w2c_v, valid, view_weight):
    """Decomposed model-space views x0 (B, V, T, K, 2) with the generated views (1…V−1) replaced
    by the projections of their triangulation (`triangulate_views`; view 0, the input, is kept).
    A view's frame keeps x0 where that triangulation is not finite or not in front of the view's
    camera (MIN_VIEW_DEPTH): its projection would be meaningless.

    Applied to every DDIM step's X̂_0, it makes the network's next step start from views that
    agree with one 3D motion and with the observed input view, rather than triangulating
    disagreeing views once at the end. Not in the paper (docs/results.md, "Lifting steps on
    validation"). jax.
    """
    kp3d = triangulate_views(compose(x0), A, w2c_v, valid, view_weight)
    pix, depth = project(kp3d[:, None], A[:, :, None], w2c_v)
    ok = jnp.all((depth > MIN_VIEW_DEPTH) & jnp.all(jnp.isfinite(pix), -1), -1)[..., None, None]  # (B, V, T, 1, 1)
    ok = ok & (jnp.arange(x0.shape[1]) > 0)[:, None, None, None]
    return jnp.where(ok, decompose(pix), x0)


def make_lift_fn(config, graphdef, rest, mesh, lc):
    """Jitted `fn(params, batch of windows, key) -> (kp3d (B, T, K, 3), views (B, V, T, K, 2))`.

    config: the model's training config. lc: the `lift` section of the lifting config; its
    generated_view_weight is the triangulation weight of the generated views relative to a detected
    input keypoint of confidence 1, and with consistent_views every DDIM step's X̂_0 of the
    generated views is replaced by the projection of its triangulation (`consistent`). The batch
    axis of the windows is sharded over the mesh's 'data' axis.
    """
    from anylift_jax import train  # noqa: PLC0415  (train imports the data stack; lifting needs it only here)

    num_views = config.model.num_views
    geometry = jax.vmap(functools.partial(ring_geometry, num_views=num_views))
    view_weight = lc.generated_view_weight

    def fn(params, w, key):
        B, T, K, _ = w["x"].shape
        w2c_v, A, cam = geometry(w["w2c"], w["scale"], w["center"], w["track"])
        x0 = jnp.zeros((B, num_views, T, K, 2)).at[:, 0].set(w["x"])
        joint_mask = jnp.ones((B, num_views, T, K)).at[:, 0].set(w["valid"])
        batch = {"x0": x0, "cam": cam, "mask": w["mask"], "joint_mask": joint_mask}
        step = functools.partial(consistent, A=A, w2c_v=w2c_v, valid=w["valid"], view_weight=view_weight)
        xg = compose(train.sample(config, graphdef, rest, params, batch, key,
                                  project=step if lc.consistent_views else None))
        return triangulate_views(xg, A, w2c_v, w["valid"], view_weight), xg

    data = sharding.data_sharded(mesh)
    repl = sharding.replicated(mesh)
    return jax.jit(fn, in_shardings=(repl, data, repl), out_shardings=(data, data))


def lift_keypoints(clips, lift_fn, params, length, lc, mesh, key, num_object_keypoints=0):
    """World keypoints (T, K, 3) of each clip: windows of `length` batched across clips, blended back.

    lc: the `lift` section of the lifting config. K = 17 + num_object_keypoints (`make_windows`).
    """
    windows = [w for i, c in enumerate(clips)
               for w in make_windows(i, c, length, lc.overlap, lc.score_threshold, num_object_keypoints)]
    batch = -(-lc.batch_size // mesh.size) * mesh.size  # a multiple of the devices
    K = skeleton.NUM_JOINTS + num_object_keypoints
    acc = [np.zeros(c.keypoints.shape[:1] + (K, 3), np.float64) for c in clips]
    wsum = [np.zeros(c.keypoints.shape[:1], np.float64) for c in clips]
    ramp = blend_weights(length, lc.overlap)
    for start in range(0, len(windows), batch):
        chunk = windows[start:start + batch]
        chunk = chunk + [chunk[-1]] * (batch - len(chunk))  # fixed batch shape: one compilation
        arrays = {f: np.stack([getattr(w, f) for w in chunk]) for f in ("x", "valid", "mask", "w2c", "scale", "center", "track")}
        arrays = sharding.shard_batch(arrays, mesh)  # multi-process jit takes no numpy with a sharding
        kp3d, _ = lift_fn(params, arrays, jax.random.fold_in(key, start))
        kp3d = np.asarray(jax.device_get(kp3d))
        for w, k in zip(windows[start:start + batch], kp3d):
            real = w.mask > 0
            wt = (ramp * w.mask)[real]
            np.add.at(acc[w.clip], w.frames[real], k[real] * wt[:, None, None])
            np.add.at(wsum[w.clip], w.frames[real], wt)
    return [(a / s[:, None, None]).astype(np.float32) for a, s in zip(acc, wsum)]


def scaled_about_cameras(kp3d, clip, s):
    """Keypoints (T, K, 3) with frame t scaled about its input camera centre by s (T,): every point
    slides along its own input ray, so the input view's image is kept and only depth changes."""
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)
    return (eye + (kp3d.astype(np.float64) - eye) * s[:, None, None]).astype(np.float32)


def constant_size_depth(kp3d, clip, sigma, prior_weight=0.0):
    """Keypoints (T, K, 3) of a clip with each frame t scaled about its input camera centre by

        k_t = G_σ[Σ_b w_bt L̄_b] / G_σ[Σ_b w_bt L_bt],   w_bt = (1 − (û_bt · r̂_bt)²)^IN_PLANE_POWER,

    where L_bt is the length of bone b (`skeleton.BONES`) in frame t, L̄_b its w-weighted mean
    over the clip, û_bt its direction, r̂_bt the input camera's ray to its midpoint, and G_σ a
    Gaussian smoothing over `sigma` frames (a windowed weighted least squares for k_t).

    Scaling about the camera centre slides every point along its own ray: the input view's
    projection is kept and only depth changes. Triangulated depth errs slowly (the generated views
    of consecutive windows disagree) and, the input view being fixed, a body placed too far is
    also too large by the same factor, while a real body's bone lengths never change: fixing the
    body's size fixes its depth. A bone across the ray has its length from the observed input view
    and the depth alone; one along the ray has it from the generated views' depth difference,
    which is what errs, so w keeps the former. Objects move with the person. Not in the paper.

    L̄ keeps the triangulated metric scale, blended with a size prior: L̄ is multiplied by
    (Σ_b w̄_b P_b / Σ_b w̄_b L̄_b)^prior_weight, w̄_b = Σ_t w_bt and P the default Anny body's
    bone lengths (PRIOR_BONE_LENGTHS): a model trained on few bodies lifts bodies too small and
    as much too near, except where the camera orbits the person and parallax fixes the scale
    (docs/results.md, "Lifting steps on validation").
    """
    kp3d = kp3d.astype(np.float64)
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)  # (T, 1, 3) camera centres
    a, b = (np.array(i) for i in zip(*skeleton.BONES))
    bone = kp3d[:, a] - kp3d[:, b]  # (T, B, 3)
    ray = 0.5 * (kp3d[:, a] + kp3d[:, b]) - eye
    length = np.linalg.norm(bone, axis=-1)
    along = np.sum(bone * ray, -1) / np.maximum(length * np.linalg.norm(ray, axis=-1), 1e-12)
    w = (1.0 - along**2) ** IN_PLANE_POWER + 1e-9  # (T, B); 1e-9: a bone seen end-on in every frame
    wb = np.sum(w, 0)
    mean_length = np.sum(w * length, 0) / wb
    mean_length = mean_length * (np.sum(wb * PRIOR_BONE_LENGTHS) / np.sum(wb * mean_length)) ** prior_weight
    k = (gaussian_filter1d(np.sum(w * mean_length, -1), sigma, mode="nearest")
         / gaussian_filter1d(np.sum(w * length, -1), sigma, mode="nearest"))
    return scaled_about_cameras(kp3d, clip, k)


def planted(kp3d, fps):
    """(T − 1, 2) bool: each ankle planted from frame t to t + 1 (PLANTED_SPEED, PLANTED_HEIGHT)
    in keypoints (T, K, 3) of an upright (Z up) world."""
    ankles = kp3d[:, skeleton.ANKLES].astype(np.float64)
    step = np.linalg.norm(np.diff(ankles, axis=0), axis=-1)
    z = ankles[..., 2]
    low = z <= np.percentile(z, 5) + PLANTED_HEIGHT
    return (step < PLANTED_SPEED / fps) & low[1:] & low[:-1]


def planted_feet_depth(kp3d, clip):
    """Keypoints (T, K, 3) of a clip (upright world, `upright`) with each frame t scaled about its
    input camera centre C_t by the factor s_t minimising

        Σ_(t, j planted) |s_{t+1} d_{t+1,j} − s_t d_tj + C_{t+1} − C_t|² / PLANTED_STD²
        + Σ_t (s_t − 1)² / SCALE_STD² + Σ_t (s_{t−1} − 2 s_t + s_{t+1})² / SCALE_BEND_STD²,

    d_tj = a_tj − C_t the camera-to-ankle vector of ankle j (`planted`).

    A planted foot stands still in the world while the camera moves, so its depth along the input
    rays must change as the camera's motion says: this fixes how depth changes within each stance,
    which the body's size (`constant_size_depth`, run first) leaves noisy (the lifted feet slide).
    The level between stances rests on the smoothness and the prior: a camera's parallax over one
    stance fixes absolute depth only weakly. Like the size step it slides points along their rays
    and keeps the input view. Not in the paper. Held-out benchmark, shipped model of commit
    bad6cc3, default lifting otherwise: WA-MPJPE100 96.0 -> 89.2 mm, W-MPJPE100 176 -> 162, RTE
    2.10 -> 1.75 %; TRAIN motions re-rendered WA 101.3 -> 101.1, RTE 1.70 -> 1.68 (docs/results.md).
    """
    T = kp3d.shape[0]
    if T < 3:
        return kp3d
    kp = kp3d.astype(np.float64)
    eye = clip.cam_c2w[:, :3, 3].astype(np.float64)  # (T, 3)
    t, j = np.nonzero(planted(kp3d, clip.fps))
    a = np.asarray(skeleton.ANKLES)[j]
    d0, d1 = kp[t, a] - eye[t], kp[t + 1, a] - eye[t + 1]  # (P, 3)
    rows = np.arange(3 * len(t)).reshape(-1, 3)
    feet = sparse.csr_matrix(
        (np.concatenate([-d0.ravel(), d1.ravel()]) / PLANTED_STD,
         (np.concatenate([rows.ravel(), rows.ravel()]), np.concatenate([np.repeat(t, 3), np.repeat(t + 1, 3)]))),
        shape=(3 * len(t), T))
    bend = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(T - 2, T)) / SCALE_BEND_STD
    prior = sparse.identity(T) / SCALE_STD
    M = sparse.vstack([feet, bend, prior]).tocsc()
    rhs = np.concatenate([(eye[t] - eye[t + 1]).ravel() / PLANTED_STD, np.zeros(T - 2), np.ones(T) / SCALE_STD])
    s = spsolve((M.T @ M).tocsc(), M.T @ rhs)
    return scaled_about_cameras(kp, clip, s)


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


def object_pose(Q, observed, category):
    """Object pose outputs {object_rot6d (T, 6), object_transl (T, 3), object_scale ()} (numpy,
    world frame) from the triangulated object keypoints Q (T, M, 3) of a clip whose input view
    observes observed (T, M) bool of them; None when no frame observes MIN_KEYPOINTS of them or
    the fit degenerates (no positive scale)."""
    if not (observed.sum(1) >= MIN_KEYPOINTS).any():
        return None
    weights = np.where(observed, 1.0, HIDDEN_OBJECT_WEIGHT).astype(np.float32)
    out = {k: np.asarray(v) for k, v in hoi.object_pose_from_keypoints(Q, weights, category).items()}
    if not (out["object_scale"] > 0 and all(np.isfinite(v).all() for v in out.values())):
        return None
    return out


def track_depth(kp3d, clip, sigma):
    """Keypoints (T, K, 3) of a clip with each frame t scaled about its input camera centre C_t by

        s_t = f_t · (G_σ[h]_t − C_t) / f_t · (h_t − C_t),

    h_t the mid-hip in the world, f_t the input camera's optical axis, G_σ a Gaussian smoothing over
    `sigma` frames: the mid-hip's depth is that of the smoothed world track, its image unchanged.

    What the depth steps before leave is frame-to-frame depth noise along the input rays (with the
    true per-frame depth, held-out WA-MPJPE100 would fall from 82.8 to 57.2 mm), while a body's
    world track is smooth and the camera's motion is known: smoothing the track in the world,
    not the depth in the camera, keeps a camera that moves along its axis out of the average. The
    in-plane position stays the observed one; the whole body (and object) moves with its mid-hip.
    Not in the paper. Shipped model, default lifting otherwise, no body fit, sigma 0 / 5 / 7 / 10 /
    20: held-out WA-MPJPE100 85.5 / 79.0 / 76.2 / 74.1 / 76.0 mm, RTE 1.72 / 1.64 / 1.64 / 1.67 /
    1.84 %; TRAIN motions re-rendered WA 99.1 / 94.3 / 93.5 / 94.3 / 108.7, RTE 1.72 / 1.68 /
    1.74 / 1.92 / 2.78 (docs/results.md).
    """
    kp = kp3d.astype(np.float64)
    c2w = clip.cam_c2w.astype(np.float64)
    eye, axis = c2w[:, :3, 3], c2w[:, :3, 2]
    hip = skeleton.mid_hip(kp)
    depth = np.einsum("ti,ti->t", hip - eye, axis)
    smooth = np.einsum("ti,ti->t", gaussian_filter1d(hip, sigma, axis=0, mode="nearest") - eye, axis)
    return scaled_about_cameras(kp, clip, smooth / depth)


def detections(clip, score_threshold):
    """The input view's body keypoints (T, 17, 2) and their scores (T, 17), 0 where missing."""
    J = skeleton.NUM_JOINTS
    return clip.keypoints[:, :J], np.where(clip.scores[:, :J] > score_threshold, clip.scores[:, :J], 0.0)


def on_input_rays(kp3d, clip, score_threshold, sigma):
    """Body keypoints (T, K, 3) moved towards the rays of the input view's detections, each at its
    depth in the input camera: the move onto the ray, in camera coordinates, averaged over a
    Gaussian of `sigma` frames among the frames that detect the joint (none where no detection
    is near: smoothed weight < MIN_RAY_SCORE).

    The triangulation weights the generated views at 0.1 (`generated_view_weight`), and the
    temporal smoothing moves points off their rays: the lifted body's projection drifts from what
    the camera saw, while its depth is what the generated views contribute. The move is smoothed,
    not the detections: the camera's own motion dominates the image motion. Not in the paper.
    Held-out benchmark, shipped model, default lifting without the body fit: WA-MPJPE100 86.6 ->
    85.5 mm, W-MPJPE100 149.4 -> 147.3 (docs/results.md).
    """
    J = skeleton.NUM_JOINTS
    pix, scores = detections(clip, score_threshold)
    c2w = clip.cam_c2w.astype(np.float64)
    R, eye = c2w[:, :3, :3], c2w[:, :3, 3]
    cam = np.einsum("tji,tkj->tki", R, kp3d[:, :J] - eye[:, None])  # (T, 17, 3) camera coordinates
    ray = rays(pix.astype(np.float64), clip.intrinsics.astype(np.float64))
    ray = np.concatenate([ray, np.ones_like(ray[..., :1])], -1)  # (T, 17, 3) at camera depth 1
    seen = (scores > 0).astype(np.float64)
    move = np.where(seen[..., None] > 0, ray * cam[..., 2:] - cam, 0.0)
    near = seen
    if sigma > 0:
        near = gaussian_filter1d(seen, sigma, axis=0, mode="nearest")
        move = gaussian_filter1d(move, sigma, axis=0, mode="nearest") / np.maximum(near, 1e-6)[..., None]
    cam = cam + np.where((near > MIN_RAY_SCORE)[..., None], move, 0.0)
    out = kp3d.copy()
    out[:, :J] = np.einsum("tij,tkj->tki", R, cam) + eye[:, None]
    return out


def fit_bodies(body, kp3d_list, clips, score_threshold, bucket):
    """Fit the body model to each clip's world keypoints (T, 17, 3) (`on_input_rays` run first),
    their projection into the input view counted again where a joint is detected (`fit.fit3d`
    with `view`): the image position of a joint is observed, its depth along the ray is what the
    generated views guessed, so the fit should give way in depth first. Returns
    [(keypoints (T, 17, 3), params)].

    The clips are fitted together, one batched call: padded (weight 0) to the longest clip's
    length rounded up to a multiple of `bucket` frames, so that few shapes compile.
    """
    from anylift_jax.body import fit  # noqa: PLC0415  (keeps `--help` fast)

    Tp = -(-max(len(k) for k in kp3d_list) // bucket) * bucket

    def pad(x, fill):
        tail = np.repeat(x[-1:], Tp - len(x), 0) if fill is None else np.full((Tp - len(x),) + x.shape[1:], fill)
        return np.concatenate([x, tail.astype(x.dtype)])

    parts = {k: [] for k in ("kp", "w", "pix", "pix_w", "K", "w2c")}
    for kp, clip in zip(kp3d_list, clips):
        T = kp.shape[0]
        _, scores = detections(clip, score_threshold)
        w2c = np.linalg.inv(clip.cam_c2w.astype(np.float64)).astype(np.float32)
        K = np.broadcast_to(clip.intrinsics, (T, 3, 3)).astype(np.float32)
        pix = np.asarray(project(jnp.asarray(kp), jnp.asarray(K), jnp.asarray(w2c))[0])
        for key, x, fill in (("kp", kp, None), ("w", np.ones(kp.shape[:2], np.float32), 0.0), ("pix", pix, None),
                             ("pix_w", scores.astype(np.float32), 0.0), ("K", K, None), ("w2c", w2c, None)):
            parts[key].append(pad(x, fill))
    a = {k: jnp.asarray(np.stack(v)) for k, v in parts.items()}
    res = fit.fit3d(body, a["kp"], a["w"], view=(a["pix"], a["pix_w"], a["K"], a["w2c"]))
    params = jax.tree.map(np.asarray, res["params"])
    keypoints = np.asarray(res["keypoints"])
    out = []
    for i, kp in enumerate(kp3d_list):
        T = kp.shape[0]
        out.append((keypoints[i, :T], {k: (v[i] if k == "shape" else v[i, :T]) for k, v in params.items()}))
    return out


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


def _guarded(name, step, points, clip):
    """`step(points)`, or `points` unchanged when the step raises or leaves a non-finite value
    (flips, rolls and lying down are outside what some steps assume); says so on stderr."""
    try:
        out = step(points)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        print(f"warning: {clip.clip_id}: lifting step {name} failed ({e}); skipped for this clip", file=sys.stderr)
        return points
    if not np.isfinite(out).all():
        print(f"warning: {clip.clip_id}: lifting step {name} gave non-finite values; skipped for this clip",
              file=sys.stderr)
        return points
    return out


def fill_nonfinite(points, clip):
    """Keypoints (T, K, 3) with non-finite entries (a window whose triangulation failed) replaced
    by the joint's nearest finite frame, or by its input ray at the clip's median depth where a
    joint is never finite; warns on stderr. A clip is never lost to a NaN."""
    bad = ~np.isfinite(points).all(-1)
    if not bad.any():
        return points
    print(f"warning: {clip.clip_id}: {bad.mean():.1%} of the triangulated keypoints not finite; "
          "filled from neighbouring frames", file=sys.stderr)
    out = np.array(points, np.float64)
    T = len(out)
    eye = clip.cam_c2w[:, :3, 3].astype(np.float64)
    finite = ~bad
    depth = np.linalg.norm(out[finite] - np.broadcast_to(eye[:, None], out.shape)[finite], axis=-1)
    depth = float(np.median(depth)) if depth.size else 4.0
    xy = rays(np.nan_to_num(clip.keypoints[:, :skeleton.NUM_JOINTS]).astype(np.float64),
              clip.intrinsics.astype(np.float64))
    world = np.einsum("tij,tkj->tki", clip.cam_c2w[:, :3, :3].astype(np.float64),
                      np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1))
    world /= np.linalg.norm(world, axis=-1, keepdims=True)
    t = np.arange(T)
    for k in range(out.shape[1]):
        ok = np.flatnonzero(finite[:, k])
        if ok.size:
            pos = np.searchsorted(ok, t)  # the first finite frame at or after t
            before, after = ok[np.maximum(pos - 1, 0)], ok[np.minimum(pos, ok.size - 1)]
            out[:, k] = out[np.where(t - before < after - t, before, after), k]
        elif k < skeleton.NUM_JOINTS:
            out[:, k] = eye + depth * np.nan_to_num(world[:, k], nan=0.0)
        else:
            out[:, k] = eye + depth * np.array([0.0, 0.0, 1.0])
    return np.nan_to_num(out).astype(np.float32)


def depth_steps(points, clip, lc):
    """The steps after triangulation, in order, each switched by the `lift` config `lc` and each
    guarded (`_guarded`): smoothing, constant-size depth, planted feet, track depth, on input rays.
    points: (T, K, 3) world keypoints of one clip (upright frame)."""
    points = fill_nonfinite(points, clip)
    steps = []
    if lc.smooth_sigma > 0:
        # Median first: a frame whose triangulation failed (near-degenerate views) is an
        # outlier, not noise; then Gaussian: samples of neighbouring frames are independent.
        steps.append(("smoothing", lambda p: gaussian_filter1d(
            median_filter(p, size=(lc.median_size, 1, 1), mode="nearest"), lc.smooth_sigma, axis=0, mode="nearest")))
    if lc.constant_size:
        steps.append(("constant_size", lambda p: constant_size_depth(p, clip, lc.size_sigma, lc.size_prior_weight)))
    if lc.planted_feet:
        steps.append(("planted_feet", lambda p: planted_feet_depth(p, clip)))
    if lc.track_sigma > 0:
        steps.append(("track_depth", lambda p: track_depth(p, clip, lc.track_sigma)))
    if lc.on_input_rays:
        steps.append(("on_input_rays", lambda p: on_input_rays(p, clip, lc.score_threshold, lc.smooth_sigma)))
    for name, step in steps:
        points = _guarded(name, step, points, clip)
    return points


def lift_archive(config, model, input_dir, output_dir, *, progress=True):
    """Lift every clip of an archive folder into `output_dir`; returns {done, skipped, failed}.

    Resumable: clips whose output exists and validates are skipped. Clips are split across
    processes (`clips[process_index::process_count]`) so hosts write disjoint outputs. A clip that
    fails is reported (file and reason) and skipped; nothing partial is written.
    """
    from anylift_jax.body import model as body_model  # noqa: PLC0415

    cfg, graphdef, rest, params = model
    num_objects = cfg.model.get("num_object_keypoints", 0)
    warned = set()
    # Hosts lift disjoint clips, each at its own pace: a mesh of this host's devices only.
    mesh = sharding.make_mesh(jax.local_devices())
    params = jax.device_put(jax.device_get(params), sharding.replicated(mesh))
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    clips, errors = archive.read_archive(input_dir)
    failed = [(os.fspath(p), e) for p, e in errors]
    clips = clips[jax.process_index()::jax.process_count()]
    todo, skipped = [], 0
    for c in clips:
        path = os.path.join(output_dir, f"{c.clip_id}.npz")
        try:
            archive.validate_output(path)
            skipped += 1
        except archive.ArchiveError:
            problem = object_problem(c, num_objects, cfg.data.get("object_category"))
            if problem is not None:
                if problem not in warned:
                    print(f"warning: {c.clip_id}: {problem}", file=sys.stderr)
                    warned.add(problem)
                c = dataclasses.replace(c, object_keypoints=None, object_scores=None, object_category=None)
            todo.append(c)
    lift_fn = make_lift_fn(cfg, graphdef, rest, mesh, config.lift)
    body = body_model.get_body_model(config.body.name, config.body.path) if config.lift.fit_body else None
    key = jax.random.key(config.seed)
    done = 0
    bar = tqdm.tqdm(total=len(todo), unit="clip", disable=not progress or jax.process_index() != 0)
    t0 = time.perf_counter()
    for start in range(0, len(todo), config.lift.clips_per_batch):
        group, turns = zip(*[upright(c) for c in todo[start:start + config.lift.clips_per_batch]])
        group_key = jax.random.fold_in(key, start)
        points = lift_keypoints(group, lift_fn, params, cfg.data.num_frames, config.lift, mesh, group_key,
                                num_objects)
        if config.lift.mirror_average and not num_objects:
            # Not for HOI models: their mirror pass lacks the object, and averaging it in moved
            # the body off the object (HOI benchmark: hand-object contact 70 -> 158 mm).
            back = lift_keypoints([mirrored(c) for c in group], lift_fn, params, cfg.data.num_frames, config.lift,
                                  mesh, jax.random.fold_in(group_key, 1))
            points = [0.5 * (p + mirror(m)) for p, m in zip(points, back)]
        points = [depth_steps(p, c, config.lift) for p, c in zip(points, group)]
        kp3d = [p[:, :skeleton.NUM_JOINTS] for p in points]
        fitted = (fit_bodies(body, kp3d, group, config.lift.score_threshold, config.lift.fit_bucket)
                  if body is not None else None)
        for i, c in enumerate(group):
            out = {"keypoints3d": kp3d[i], "body_model": np.str_("none")}
            if fitted is not None and np.isfinite(fitted[i][0]).all() and all(
                    np.isfinite(v).all() for v in fitted[i][1].values() if np.asarray(v).dtype.kind == "f"):
                out = {"keypoints3d": fitted[i][0], "body_model": np.str_(body.name)}
            elif fitted is not None:
                print(f"warning: {c.clip_id}: the body fit diverged; writing the lifted keypoints "
                      "without body parameters", file=sys.stderr)
            if c.object_keypoints is not None:
                pose = object_pose(points[i][:, skeleton.NUM_JOINTS:],
                                   c.object_scores > config.lift.score_threshold, c.object_category)
                if pose is None:
                    print(f"warning: {c.clip_id}: no object pose (no frame observes {MIN_KEYPOINTS} "
                          "object keypoints, or the fit degenerates)", file=sys.stderr)
                else:
                    out.update(pose)
            fit_ok = fitted is not None and str(out["body_model"]) != "none"
            out = to_clip_world(out, turns[i], body if fit_ok else None, fitted[i][1] if fit_ok else None)
            try:
                archive.write_output(os.path.join(output_dir, f"{c.clip_id}.npz"), out)
                done += 1
            except archive.ArchiveError as e:
                failed.append((c.clip_id, str(e)))
        bar.update(len(group))
        bar.set_postfix(clips_per_s=f"{(done + len(failed)) / (time.perf_counter() - t0):.2f}")
    bar.close()
    return {"done": done, "skipped": skipped, "failed": failed}


def main(argv=None):
    from anylift_jax import train  # noqa: PLC0415
    from anylift_jax.data.build import load_config  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--input", required=True, help="keypoint archive folder (docs/keypoint-archive.md)")
    parser.add_argument("--output", required=True, help="folder for <clip>.npz outputs")
    parser.add_argument("--checkpoint", default=None, help="trained Stage-2 model (default: the shipped one)")
    args = parser.parse_args(argv)
    sharding.initialize()
    config = load_config(args.config)
    model = train.load_model(args.checkpoint or SHIPPED_MODEL)
    summary = lift_archive(config, model, args.input, args.output)
    for name, reason in summary["failed"]:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    print(f"done {summary['done']}, skipped {summary['skipped']}, failed {len(summary['failed'])}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
