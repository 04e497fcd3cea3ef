"""Camera trajectory samplers for synthetic training and evaluation data.

Every sampler takes a `np.random.Generator` and returns world-to-camera matrices `w2c` (T, 4, 4)
float32 in OpenCV axes (x right, y down, z forward) for a world with Z up (design.md). Subject-aware
samplers take the pelvis trajectory (T, 3).

numpy, not jax: these run inside the data pipeline, where eager jax would compile every primitive
anew for each clip length (about 1 s per new T on 2 CPU cores). `rigid`, `invert_rigid`, `look_at`
and `intrinsics` therefore mirror `anylift_jax.geometry.cameras`; the tests check that they agree.
"""
import chex
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter
from scipy.spatial.transform import Rotation

from anylift_jax import skeleton

UP = np.array([0.0, 0.0, 1.0])
# Placement of subject-aware cameras: horizontal distance to the subject (m) and camera height (m).
DISTANCE = (3.0, 7.0)
HEIGHT = (1.0, 1.8)
# Exponential-smoothing time constant (s) of cameras following the subject: the operator's lag.
LAG = (0.1, 0.5)
# Orbit angular speed (degrees per second, either direction).
ORBIT_SPEED = (10.0, 40.0)
# Hand-held shake: per-axis std of the rotation (degrees) and translation (m), and the cut-off
# frequency (Hz) of the low-pass that makes it smooth.
SHAKE_ROT_DEG = (0.3, 1.5)
SHAKE_TRANS = (0.01, 0.04)
SHAKE_HZ = (0.5, 2.0)
# Slow zoom: largest total focal-length ratio over a clip.
ZOOM_RATIO = 1.4


def rigid(R, t):
    """(…, 3, 3), (…, 3) -> (…, 4, 4) float32 [R t; 0 1]."""
    T = np.zeros(R.shape[:-2] + (4, 4), np.float32)
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def invert_rigid(T):
    """Inverse of rigid (…, 4, 4) transforms."""
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    return rigid(Rt, -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3]))


def look_at(eye, target):
    """w2c (…, 4, 4) of cameras at `eye` (…, 3) looking at `target` (…, 3), image up = world +Z."""
    eye = np.asarray(eye, np.float64)
    z = np.asarray(target, np.float64) - eye
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    x = np.cross(z, UP)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    R = np.stack([x, y, z], -2)  # rows: camera axes in world coordinates
    return rigid(R, -np.einsum("...ij,...j->...i", R, eye))


def intrinsics(focal, width, height):
    """K (…, 3, 3) float32, square pixels, principal point at the image centre; focal (…,) px."""
    focal = np.asarray(focal, np.float64)
    K = np.zeros(focal.shape + (3, 3), np.float32)
    K[..., 0, 0] = K[..., 1, 1] = focal
    K[..., 0, 2] = width / 2.0
    K[..., 1, 2] = height / 2.0
    K[..., 2, 2] = 1.0
    return K


def sample_intrinsics(rng, width, height, fov_deg_range):
    """K (3, 3) with a horizontal field of view uniform in `fov_deg_range` (degrees)."""
    fov = np.deg2rad(rng.uniform(*fov_deg_range))
    return intrinsics(width / 2.0 / np.tan(fov / 2.0), width, height)


def facing(kp3d):
    """Horizontal unit facing direction (…, 3) of COCO-17 keypoints (…, 17, 3), from the hips and
    shoulders: forward = left × up, where left averages the right-to-left hip and shoulder vectors."""
    l_sh, r_sh = skeleton.SHOULDERS
    l_hip, r_hip = skeleton.HIPS
    left = (kp3d[..., l_hip, :] - kp3d[..., r_hip, :]) + (kp3d[..., l_sh, :] - kp3d[..., r_sh, :])
    fwd = np.cross(left, UP)
    fwd[..., 2] = 0.0
    return fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)


def smooth(x, tau, fps):
    """Exponential smoothing along axis 0 with time constant `tau` seconds, starting at x[0]:
    a camera operator following `x` with lag."""
    a = 1.0 - np.exp(-1.0 / (tau * fps))
    x = np.asarray(x, np.float64)
    # y_t = a x_t + (1 - a) y_{t-1} with y_{-1} = x_0.
    return lfilter([a], [1.0, a - 1.0], x, axis=0, zi=(1.0 - a) * x[:1])[0]


def _offset(rng, azimuth):
    """Camera offset (3,) from the subject's ground point: horizontal distance in DISTANCE at
    `azimuth` (radians; uniform when None), height in HEIGHT."""
    if azimuth is None:
        azimuth = rng.uniform(-np.pi, np.pi)
    d = rng.uniform(*DISTANCE)
    return np.array([d * np.cos(azimuth), d * np.sin(azimuth), rng.uniform(*HEIGHT)])


def _fixed_eye(rng, pelvis, azimuth):
    """A fixed camera position at least DISTANCE[0] away (horizontally) from every pelvis position."""
    centre = pelvis[:, :2].mean(0)
    spread = np.linalg.norm(pelvis[:, :2] - centre, axis=-1).max()
    off = _offset(rng, azimuth)
    off[:2] *= 1.0 + spread / np.linalg.norm(off[:2])
    return np.array([centre[0], centre[1], 0.0]) + off


def static(rng, pelvis, fps=30.0, azimuth=None):
    """Fixed camera looking at the centre of the pelvis path. pelvis (T, 3) -> w2c (T, 4, 4)."""
    eye = _fixed_eye(rng, pelvis, azimuth)
    w2c = look_at(eye, pelvis.mean(0))
    return np.broadcast_to(w2c, (len(pelvis), 4, 4)).copy()


def pan_tilt(rng, pelvis, fps=30.0, azimuth=None):
    """Fixed position, rotating to keep the (lagged) pelvis in view. -> w2c (T, 4, 4)."""
    eye = _fixed_eye(rng, pelvis, azimuth)
    target = smooth(pelvis, rng.uniform(*LAG), fps)
    return look_at(np.broadcast_to(eye, target.shape), target)


def track(rng, pelvis, fps=30.0, azimuth=None):
    """Dolly/track: the camera keeps a fixed world offset from the lagged pelvis and looks at it."""
    lagged = smooth(pelvis, rng.uniform(*LAG), fps)
    ground = lagged * np.array([1.0, 1.0, 0.0])
    return look_at(ground + _offset(rng, azimuth), lagged)


def orbit(rng, pelvis, fps=30.0, azimuth=None):
    """Circles the lagged pelvis at constant height, radius and angular speed."""
    lagged = smooth(pelvis, rng.uniform(*LAG), fps)
    off = _offset(rng, azimuth)
    radius, a0 = np.linalg.norm(off[:2]), np.arctan2(off[1], off[0])
    speed = np.deg2rad(rng.uniform(*ORBIT_SPEED)) * rng.choice([-1.0, 1.0])
    a = a0 + speed * np.arange(len(pelvis)) / fps
    eye = np.stack([lagged[:, 0] + radius * np.cos(a), lagged[:, 1] + radius * np.sin(a),
                    np.full_like(a, off[2])], -1)
    return look_at(eye, lagged)


def _low_pass_noise(rng, shape, cutoff_hz, fps):
    """Smooth Gaussian noise with unit std per sample: white noise through a Gaussian low-pass of
    cut-off `cutoff_hz`, rescaled by the filter's noise gain."""
    sigma = fps / (2.0 * np.pi * cutoff_hz)
    radius = int(4.0 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    return gaussian_filter1d(rng.standard_normal(shape), sigma, axis=0) / np.sqrt((kernel ** 2).sum())


def shake(rng, w2c, fps=30.0):
    """Hand-held shake added to any trajectory w2c (T, 4, 4): smooth random rotation about the
    camera centre and translation of the centre, per-axis std in SHAKE_ROT_DEG / SHAKE_TRANS."""
    T = len(w2c)
    cutoff = rng.uniform(*SHAKE_HZ)
    rot = _low_pass_noise(rng, (T, 3), cutoff, fps) * np.deg2rad(rng.uniform(*SHAKE_ROT_DEG))
    trans = _low_pass_noise(rng, (T, 3), cutoff, fps) * rng.uniform(*SHAKE_TRANS)
    return rigid(Rotation.from_rotvec(rot).as_matrix(), trans) @ w2c


def zoom(rng, K, num_frames):
    """Slow zoom: per-frame intrinsics (T, 3, 3) whose focal length eases (smoothstep) from K's
    to K's times a ratio in [1/ZOOM_RATIO, ZOOM_RATIO]."""
    s = np.linspace(0.0, 1.0, num_frames)
    ratio = np.exp(rng.uniform(-1.0, 1.0) * np.log(ZOOM_RATIO) * s * s * (3.0 - 2.0 * s))
    Ks = np.broadcast_to(np.asarray(K, np.float32), (num_frames, 3, 3)).copy()
    Ks[:, 0, 0] *= ratio
    Ks[:, 1, 1] *= ratio
    return Ks


# The "Internet video" mix of camera motions: mostly tracking.
INTERNET_MIX = {"track": 0.6, "pan_tilt": 0.25, "static": 0.15}


def internet_video(rng, kp3d, fps=30.0):
    """Cameras like those of people filming someone: in the front hemisphere of the subject's
    frame-0 facing direction, DISTANCE away, HEIGHT high, mostly tracking, with hand-held shake.
    kp3d (T, 17, 3) -> w2c (T, 4, 4)."""
    chex.assert_shape(kp3d, (None, skeleton.NUM_JOINTS, 3))
    f = facing(kp3d[0])
    azimuth = np.arctan2(f[1], f[0]) + rng.uniform(-np.pi / 2, np.pi / 2)
    kind = rng.choice(list(INTERNET_MIX), p=list(INTERNET_MIX.values()))
    return shake(rng, TRAJECTORIES[kind](rng, skeleton.mid_hip(kp3d), fps, azimuth), fps)


TRAJECTORIES = {"static": static, "pan_tilt": pan_tilt, "track": track, "orbit": orbit}
KINDS = tuple(TRAJECTORIES) + ("internet",)


def sample_trajectory(rng, kp3d, kind, fps=30.0):
    """w2c (T, 4, 4) of a trajectory of `kind` (one of KINDS) around keypoints kp3d (T, 17, 3)."""
    if kind == "internet":
        return internet_video(rng, kp3d, fps)
    if kind not in TRAJECTORIES:
        raise ValueError(f"unknown camera trajectory kind '{kind}'; have {KINDS}")
    return TRAJECTORIES[kind](rng, skeleton.mid_hip(kp3d), fps)


def ring(num_views, center, radius, height, start_angle=0.0):
    """Evaluation ring: w2c (V, 4, 4) of V cameras evenly spaced on the horizontal circle of
    `radius` around `center` (3,) at world height `height`, looking at `center`; view v sits at
    azimuth start_angle + 2πv/V (radians, from +X towards +Y)."""
    center = np.asarray(center, np.float64)
    a = start_angle + 2.0 * np.pi * np.arange(num_views) / num_views
    eye = np.stack([center[0] + radius * np.cos(a), center[1] + radius * np.sin(a),
                    np.full_like(a, height)], -1)
    return look_at(eye, np.broadcast_to(center, eye.shape))


def hemisphere(rng, center, num, distance=(2.5, 6.0), elevation_deg=(-10.0, 60.0)):
    """Viewpoints for training diversity: w2c (num, 4, 4) looking at `center` (3,) from uniform
    azimuth (any direction), elevation uniform in `elevation_deg`, distance uniform in `distance`."""
    if max(abs(e) for e in elevation_deg) >= 89.0:
        raise ValueError(f"elevation_deg {elevation_deg}: must stay within ±89° (image up is world Z)")
    center = np.asarray(center, np.float64)
    az = rng.uniform(-np.pi, np.pi, num)
    el = np.deg2rad(rng.uniform(*elevation_deg, num))
    d = rng.uniform(*distance, num)
    eye = center + d[:, None] * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    return look_at(eye, np.broadcast_to(center, eye.shape))
