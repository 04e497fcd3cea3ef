"""The steps after triangulation, in the order `depth_steps` runs them: smoothing, constant-size
depth, planted feet, track depth, on input rays. Each slides points along the input view's rays or
moves them onto them, so the input view's image is kept; each is guarded (a step that fails or
leaves a non-finite value is skipped for that clip, with a warning). None is in the paper; the
on/off table that keeps them is in docs/results.md, "Lifting steps on validation"."""
import sys

import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.sparse.linalg import spsolve

from anylift_jax import skeleton
from anylift_jax.data.normalize import rays


# Bone lengths (m) of `skeleton.BONES` of the default Anny body (`body.model`, default shape,
# zero pose), the size prior of `constant_size_depth`.
PRIOR_BONE_LENGTHS = np.array([0.048, 0.048, 0.095, 0.095, 0.304, 0.260, 0.232, 0.260, 0.232, 0.481, 0.481,
                               0.175, 0.378, 0.373, 0.378, 0.373])


def scaled_about_cameras(kp3d, clip, s):
    """Keypoints (T, K, 3) with frame t scaled about its input camera centre by s (T,): every point
    slides along its own input ray, so the input view's image is kept and only depth changes."""
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)
    return (eye + (kp3d.astype(np.float64) - eye) * s[:, None, None]).astype(np.float32)


def constant_size_depth(kp3d, clip, sigma, prior_weight=0.0, in_plane_power=4):
    """Keypoints (T, K, 3) of a clip with each frame t scaled about its input camera centre by

        k_t = G_σ[Σ_b w_bt L̄_b] / G_σ[Σ_b w_bt L_bt],   w_bt = (1 − (û_bt · r̂_bt)²)^in_plane_power,

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
    bone lengths (PRIOR_BONE_LENGTHS): a model lifts bodies too small and as much too near,
    except where the camera orbits the person and parallax fixes the scale.
    """
    kp3d = kp3d.astype(np.float64)
    eye = clip.cam_c2w[:, None, :3, 3].astype(np.float64)  # (T, 1, 3) camera centres
    a, b = (np.array(i) for i in zip(*skeleton.BONES))
    bone = kp3d[:, a] - kp3d[:, b]  # (T, B, 3)
    ray = 0.5 * (kp3d[:, a] + kp3d[:, b]) - eye
    length = np.linalg.norm(bone, axis=-1)
    along = np.sum(bone * ray, -1) / np.maximum(length * np.linalg.norm(ray, axis=-1), 1e-12)
    w = (1.0 - along**2) ** in_plane_power + 1e-9  # (T, B); 1e-9: a bone seen end-on in every frame
    wb = np.sum(w, 0)
    mean_length = np.sum(w * length, 0) / wb
    mean_length = mean_length * (np.sum(wb * PRIOR_BONE_LENGTHS) / np.sum(wb * mean_length)) ** prior_weight
    k = (gaussian_filter1d(np.sum(w * mean_length, -1), sigma, mode="nearest")
         / gaussian_filter1d(np.sum(w * length, -1), sigma, mode="nearest"))
    return scaled_about_cameras(kp3d, clip, k)


def planted(kp3d, fps, speed, height):
    """(T − 1, 2) bool: each ankle planted from frame t to t + 1 in keypoints (T, K, 3) of an
    upright (Z up) world: it moves less than `speed` (m/s) and is within `height` (m) of the
    clip's low ankle height (5th percentile) at both. The lifted feet slide, so `speed` is
    well above GVHMR's 0.3 m/s on the truth."""
    ankles = kp3d[:, skeleton.ANKLES].astype(np.float64)
    step = np.linalg.norm(np.diff(ankles, axis=0), axis=-1)
    z = ankles[..., 2]
    low = z <= np.percentile(z, 5) + height
    return (step < speed / fps) & low[1:] & low[:-1]


def planted_feet_depth(kp3d, clip, lc):
    """Keypoints (T, K, 3) of a clip (upright world, `upright`) with each frame t scaled about its
    input camera centre C_t by the factor s_t minimising

        Σ_(t, j planted) |s_{t+1} d_{t+1,j} − s_t d_tj + C_{t+1} − C_t|² / σ_p²
        + Σ_t (s_t − 1)² / σ_s² + Σ_t (s_{t−1} − 2 s_t + s_{t+1})² / σ_b²,

    d_tj = a_tj − C_t the camera-to-ankle vector of ankle j (`planted` with lc.planted_speed,
    lc.planted_height), σ_p, σ_s, σ_b = lc.planted_std, lc.scale_std, lc.scale_bend_std.

    A planted foot stands still in the world while the camera moves, so its depth along the input
    rays must change as the camera's motion says: this fixes how depth changes within each stance,
    which the body's size (`constant_size_depth`, run first) leaves noisy (the lifted feet slide).
    The level between stances rests on the smoothness and the prior: a camera's parallax over one
    stance fixes absolute depth only weakly. Like the size step it slides points along their rays
    and keeps the input view. Not in the paper.
    """
    T = kp3d.shape[0]
    if T < 3:
        return kp3d
    kp = kp3d.astype(np.float64)
    eye = clip.cam_c2w[:, :3, 3].astype(np.float64)  # (T, 3)
    t, j = np.nonzero(planted(kp3d, clip.fps, lc.planted_speed, lc.planted_height))
    a = np.asarray(skeleton.ANKLES)[j]
    d0, d1 = kp[t, a] - eye[t], kp[t + 1, a] - eye[t + 1]  # (P, 3)
    rows = np.arange(3 * len(t)).reshape(-1, 3)
    feet = sparse.csr_matrix(
        (np.concatenate([-d0.ravel(), d1.ravel()]) / lc.planted_std,
         (np.concatenate([rows.ravel(), rows.ravel()]), np.concatenate([np.repeat(t, 3), np.repeat(t + 1, 3)]))),
        shape=(3 * len(t), T))
    bend = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(T - 2, T)) / lc.scale_bend_std
    prior = sparse.identity(T) / lc.scale_std
    M = sparse.vstack([feet, bend, prior]).tocsc()
    rhs = np.concatenate([(eye[t] - eye[t + 1]).ravel() / lc.planted_std, np.zeros(T - 2), np.ones(T) / lc.scale_std])
    s = spsolve((M.T @ M).tocsc(), M.T @ rhs)
    return scaled_about_cameras(kp, clip, s)


def track_depth(kp3d, clip, sigma):
    """Keypoints (T, K, 3) of a clip with each frame t scaled about its input camera centre C_t by

        s_t = f_t · (G_σ[h]_t − C_t) / f_t · (h_t − C_t),

    h_t the mid-hip in the world, f_t the input camera's optical axis, G_σ a Gaussian smoothing over
    `sigma` frames: the mid-hip's depth is that of the smoothed world track, its image unchanged.

    What the depth steps before leave is frame-to-frame depth noise along the input rays, while a
    body's world track is smooth and the camera's motion is known: smoothing the track in the world,
    not the depth in the camera, keeps a camera that moves along its axis out of the average. The
    in-plane position stays the observed one; the whole body (and object) moves with its mid-hip.
    Not in the paper.
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


def on_input_rays(kp3d, clip, score_threshold, sigma, min_score):
    """Body keypoints (T, K, 3) moved towards the rays of the input view's detections, each at its
    depth in the input camera: the move onto the ray, in camera coordinates, averaged over a
    Gaussian of `sigma` frames among the frames that detect the joint (none where no detection
    is near: smoothed weight < min_score).

    The triangulation weights the generated views at 0.1 (`generated_view_weight`), and the
    temporal smoothing moves points off their rays: the lifted body's projection drifts from what
    the camera saw, while its depth is what the generated views contribute. The move is smoothed,
    not the detections: the camera's own motion dominates the image motion. Not in the paper.
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
    cam = cam + np.where((near > min_score)[..., None], move, 0.0)
    out = kp3d.copy()
    out[:, :J] = np.einsum("tij,tkj->tki", R, cam) + eye[:, None]
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
        steps.append(("constant_size", lambda p: constant_size_depth(p, clip, lc.size_sigma, lc.size_prior_weight,
                                                                     lc.in_plane_power)))
    if lc.planted_feet:
        steps.append(("planted_feet", lambda p: planted_feet_depth(p, clip, lc)))
    if lc.track_sigma > 0:
        steps.append(("track_depth", lambda p: track_depth(p, clip, lc.track_sigma)))
    if lc.on_input_rays:
        steps.append(("on_input_rays", lambda p: on_input_rays(p, clip, lc.score_threshold, lc.ray_sigma,
                                                               lc.min_ray_score)))
    for name, step in steps:
        points = _guarded(name, step, points, clip)
    return points
