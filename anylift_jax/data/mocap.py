"""3D motion sources: BVH forward kinematics to COCO-17, keypoint npz clips, the shipped clips.

World frame of everything returned here: Z up, metres, floor at z = 0 (design.md). The conversion of
the shipped BVH files follows `anylift_jax/assets/mocap/README.md`, so `load_bvh(".../131_02.bvh")`
reproduces `131_02.npz`.
"""
import dataclasses
from pathlib import Path

import chex
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from anylift_jax import skeleton

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "mocap"
SHIPPED = {p.stem: p for p in sorted(ASSETS.glob("*.npz"))}
# The held-out benchmark (design.md): never trained on.
HELDOUT = ("131_02", "amp_humanoid_hop")
TRAIN = tuple(n for n in SHIPPED if n not in HELDOUT)

# CMU BVH files are in ASF units: inches divided by the ASF length scale 0.45.
CMU_SCALE = 0.0254 / 0.45
# BVH is Y up; a +90 degree turn about x takes Y up to Z up (a CMU subject facing BVH +Z faces -Y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class Bvh:
    """A BVH motion. J joints in file order (end sites included, named `<parent>_end`), F frames.

    parents: (J,) int, -1 for the root. translations: (F, J, 3) joint origins in the parent's frame,
    file units (the offset, with any position channels in its place). quats: (F, J, 4) local joint
    rotations, scipy's scalar-last quaternions.
    """
    names: tuple
    parents: np.ndarray
    translations: np.ndarray
    quats: np.ndarray
    frame_time: float

    @property
    def num_frames(self):
        return self.translations.shape[0]

    def index(self, name):
        return self.names.index(name)


@dataclasses.dataclass(frozen=True)
class Rig:
    """How a BVH skeleton maps to COCO-17 (README "How the keypoints were made").

    body: BVH joint names of COCO joints 5..16 (shoulders = upper-arm roots, ..., ankles = foot roots).
    head, head_end: the head bone; its centre is `head_fraction` of the way from `head` to `head_end`.
    head_axes: (3, 3) columns = the head's forward, left, up axes in the head joint's local frame.
    soles: points (joints or end sites) that, moved by `sole_offset` (3,) metres in their own
    local frame, give sole points; the floor is a low percentile of the lowest one.
    """
    body: tuple
    head: str
    head_end: str
    head_fraction: float
    head_axes: np.ndarray
    soles: tuple
    sole_offset: np.ndarray


CMU_RIG = Rig(
    body=("LeftShoulder", "RightShoulder", "LeftElbow", "RightElbow", "LeftWrist", "RightWrist",
          "LeftHip", "RightHip", "LeftKnee", "RightKnee", "LeftAnkle", "RightAnkle"),
    head="Head",
    head_end="Head_end",
    head_fraction=0.6,
    # The CMU rest pose faces +Z with the subject's left along +X and up along +Y.
    head_axes=np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    # 2 cm below both ends of the toe bones, "below" in the toe's own frame.
    soles=("LeftToe", "LeftToe_end", "RightToe", "RightToe_end"),
    sole_offset=np.array([0.0, -0.02, 0.0]),
)

# Synthetic face points, (forward, left, up) offsets in metres from the head centre, in COCO order.
FACE_OFFSETS = np.array([
    [0.10, 0.0, -0.03],     # nose
    [0.08, 0.035, 0.0],     # left eye
    [0.08, -0.035, 0.0],    # right eye
    [-0.01, 0.075, -0.02],  # left ear
    [-0.01, -0.075, -0.02],  # right ear
])
FLOOR_PERCENTILE = 5.0


def read_bvh(path):
    """Parse a BVH file (hierarchy, channels in any order, Euler angles in degrees) into a `Bvh`."""
    path = Path(path)
    text = path.read_text()
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise ValueError(f"{path}: no MOTION section")
    tokens = head.split()
    names, parents, offsets, channels = [], [], [], []
    stack = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            channels.append([])
            i += 2
        elif tok == "End":
            names.append(names[stack[-1]] + "_end")
            parents.append(stack[-1])
            channels.append([])
            i += 2
        elif tok == "{":
            stack.append(len(names) - 1)
            i += 1
        elif tok == "}":
            stack.pop()
            i += 1
        elif tok == "OFFSET":
            offsets.append([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels[-1] = tokens[i + 2:i + 2 + n]
            i += 2 + n
        else:  # HIERARCHY
            i += 1
    if not names or len(offsets) != len(names):
        raise ValueError(f"{path}: malformed HIERARCHY (joints without OFFSET)")

    lines = motion.strip().split("\n")
    try:
        num_frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
        values = np.array(" ".join(lines[2:]).split(), np.float64)
    except (IndexError, ValueError) as e:
        raise ValueError(f"{path}: malformed MOTION header or values ({e})") from None
    num_channels = sum(len(c) for c in channels)
    if values.size != num_frames * num_channels:
        raise ValueError(f"{path}: MOTION has {values.size} values, expected {num_frames} frames x "
                         f"{num_channels} channels")
    values = values.reshape(num_frames, num_channels)

    J = len(names)
    translations = np.broadcast_to(np.array(offsets), (num_frames, J, 3)).copy()
    quats = np.zeros((num_frames, J, 4))
    quats[..., 3] = 1.0
    col = 0
    for j, chans in enumerate(channels):
        seq, angles = "", []
        for c in chans:
            axis, kind = c[0].upper(), c[1:].lower()
            if kind == "position":
                translations[:, j, "XYZ".index(axis)] = values[:, col]
            elif kind == "rotation":
                seq += axis
                angles.append(values[:, col])
            else:
                raise ValueError(f"{path}: joint {names[j]}: unknown channel {c}")
            col += 1
        if seq:
            # Uppercase = intrinsic rotations: R = R_first @ R_second @ R_third, the BVH convention.
            quats[:, j] = Rotation.from_euler(seq, np.stack(angles, -1), degrees=True).as_quat()
    return Bvh(tuple(names), np.array(parents), translations, quats, frame_time)


def resample(bvh, fps):
    """Resample a `Bvh` to `fps` from its first frame: slerp of the local rotations, linear
    interpolation of the translations (so bone lengths stay exact). Keeps every target time that
    falls inside the source clip."""
    F = bvh.num_frames
    if F < 2:
        raise ValueError(f"cannot resample a BVH of {F} frame(s)")
    duration = (F - 1) * bvh.frame_time
    t = np.arange(int(np.floor(duration * fps + 1e-6)) + 1) / fps
    src = np.arange(F) * bvh.frame_time
    pos = np.clip(t / bvh.frame_time, 0.0, F - 1)
    lo = np.minimum(np.floor(pos).astype(int), F - 2)
    w = (pos - lo)[:, None, None]
    translations = (1.0 - w) * bvh.translations[lo] + w * bvh.translations[lo + 1]
    t = np.minimum(t, src[-1])  # float rounding at the last sample
    quats = np.stack([Slerp(src, Rotation.from_quat(bvh.quats[:, j]))(t).as_quat()
                      for j in range(len(bvh.names))], 1)
    return dataclasses.replace(bvh, translations=translations, quats=quats, frame_time=1.0 / fps)


def forward_kinematics(bvh, scale, base=Y_UP_TO_Z_UP):
    """World joint positions (F, J, 3) (file units × `scale`) and rotations (F, J, 3, 3).

    `base` (3, 3) turns the file's world frame into ours (default: BVH Y up to Z up).
    """
    local = Rotation.from_quat(bvh.quats.reshape(-1, 4)).as_matrix().reshape(bvh.quats.shape[:2] + (3, 3))
    trans = bvh.translations * scale
    F, J = trans.shape[:2]
    pos = np.zeros((F, J, 3))
    rot = np.zeros((F, J, 3, 3))
    for j, p in enumerate(bvh.parents):  # file order lists every parent before its children
        parent_rot = base[None] if p < 0 else rot[:, p]
        parent_pos = 0.0 if p < 0 else pos[:, p]
        pos[:, j] = parent_pos + np.einsum("fij,fj->fi", parent_rot, trans[:, j])
        rot[:, j] = parent_rot @ local[:, j]
    return pos, rot


def bvh_to_coco(bvh, scale=CMU_SCALE, rig=CMU_RIG):
    """COCO-17 keypoints (F, 17, 3) float32 of a `Bvh`, metres, Z up, on the floor, pelvis at
    x = y = 0 in frame 0 (README "How the keypoints were made")."""
    missing = [n for n in rig.body + (rig.head, rig.head_end) + rig.soles if n not in bvh.names]
    if missing:
        raise ValueError(f"BVH skeleton lacks the rig's joints {missing}")
    pos, rot = forward_kinematics(bvh, scale)
    body = pos[:, [bvh.index(n) for n in rig.body]]
    head, head_end = pos[:, bvh.index(rig.head)], pos[:, bvh.index(rig.head_end)]
    head_rot = rot[:, bvh.index(rig.head)]
    sole_idx = [bvh.index(n) for n in rig.soles]
    centre = head + rig.head_fraction * (head_end - head)
    face = centre[:, None] + np.einsum("fij,kj->fki", head_rot, FACE_OFFSETS @ rig.head_axes.T)
    kp = np.concatenate([face, body], 1)
    soles = pos[:, sole_idx] + np.einsum("fkij,j->fki", rot[:, sole_idx], rig.sole_offset)
    kp[..., 2] -= np.percentile(soles[..., 2].min(1), FLOOR_PERCENTILE)
    kp[..., :2] -= skeleton.mid_hip(kp[0])[:2]
    return kp.astype(np.float32)


def load_bvh(path, scale=CMU_SCALE, fps=30.0, rig=CMU_RIG):
    """Read a BVH file and convert it to COCO-17 keypoints (T, 17, 3) float32 at `fps`."""
    try:
        kp = bvh_to_coco(resample(read_bvh(path), fps), scale, rig)
    except ValueError as e:
        raise ValueError(e if str(e).startswith(str(path)) else f"{path}: {e}") from None
    chex.assert_shape(kp, (None, skeleton.NUM_JOINTS, 3))
    return kp


def load_npz(path):
    """Read a keypoints3d npz clip -> (keypoints3d (T, 17, 3) float32, fps float)."""
    path = Path(path)
    arrays = {}
    with np.load(path, allow_pickle=False) as f:
        for key in ("keypoints3d", "fps"):
            if key not in f.files:
                raise ValueError(f"{path}: missing key '{key}'")
            try:
                arrays[key] = f[key]
            except ValueError:
                raise ValueError(f"{path}: key '{key}' holds pickled objects; refusing to load it") from None
    kp, fps = arrays["keypoints3d"], arrays["fps"]
    if kp.dtype.kind != "f" or kp.ndim != 3 or kp.shape[1:] != (skeleton.NUM_JOINTS, 3):
        raise ValueError(f"{path}: key 'keypoints3d': expected float (T, 17, 3), got {kp.dtype} {kp.shape}")
    if fps.shape != () or fps.dtype.kind not in "iuf" or not fps > 0:
        raise ValueError(f"{path}: key 'fps': expected a positive number, got {fps!r}")
    return kp.astype(np.float32), float(fps)


def mirror(kp3d):
    """Left/right mirror image (T, 17, 3) of a motion: world y negated, COCO left/right swapped.

    A mirrored motion is a valid motion of the mirrored person, so it doubles the poses and
    turning directions a few clips show.
    """
    return (kp3d * np.array([1.0, -1.0, 1.0], kp3d.dtype))[:, skeleton.FLIP_PERM]


def resample_times(num_frames, speed):
    """Linear resampling from the first frame at `speed` source frames per output frame:
    (lo (N,) int, w (N,) float32) so that output n = (1 − w) · x[lo] + w · x[min(lo + 1, T − 1)];
    N counts the output times inside the clip."""
    n = int(np.floor((num_frames - 1) / speed + 1e-6)) + 1
    pos = np.arange(n) * speed
    lo = np.minimum(np.floor(pos).astype(int), max(num_frames - 2, 0))
    return lo, np.clip(pos - lo, 0.0, 1.0).astype(np.float32)


def retime(kp3d, speed):
    """The motion (T, 17, 3) played `speed` times faster at the same frame rate (linear)."""
    lo, w = resample_times(len(kp3d), speed)
    w = w[:, None, None]
    return (1.0 - w) * kp3d[lo] + w * kp3d[np.minimum(lo + 1, len(kp3d) - 1)]


def load_shipped(name):
    """Keypoints (T, 17, 3) float32 at 30 fps of a shipped clip (`SHIPPED`)."""
    if name not in SHIPPED:
        raise KeyError(f"no shipped clip '{name}'; have {sorted(SHIPPED)}")
    return load_npz(SHIPPED[name])[0]
