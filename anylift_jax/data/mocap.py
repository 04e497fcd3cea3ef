"""3D motion sources: BVH forward kinematics to COCO-17, keypoint npz clips, the shipped clips.

World frame of everything returned here: Z up, metres, floor at z = 0 (design.md). The conversion of
the shipped BVH files follows `anylift_jax/assets/mocap/README.md`, so `load_bvh(".../131_02.bvh")`
reproduces `131_02.npz`.
"""
import dataclasses
import json
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
    """How a skeleton maps to COCO-17 (README "How the keypoints were made"); one row of `RIGS`.

    body: joint names of COCO joints 5..16 (shoulders = upper-arm roots, ..., ankles = foot roots).
    head: the joint whose rotation turns the face. head_centre: ((joint, weight), ...): the head
    centre is this weighted sum of joint positions, moved `centre_back` metres backwards (a rig
    with eye joints puts its centre between the eyes, 8 cm behind them).
    head_axes: (3, 3) columns = the head's forward, left, up axes in the head joint's local frame;
    None derives them from the reference pose (up = the file's up, left = from the right to the
    left shoulder, forward = left × up), which needs the rig to stand upright there.
    soles: joints (or end sites) that, moved by `sole_offset` (3,) metres in their own local
    frame, give sole points; the floor is a low percentile of the lowest one.
    scale: metres per file unit.
    """
    body: tuple
    head: str
    head_centre: tuple
    soles: tuple
    scale: float
    sole_offset: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    head_axes: np.ndarray | None = None
    centre_back: float = 0.0


# CMU BVH files are in ASF units: inches divided by the ASF length scale 0.45.
CMU_RIG = Rig(
    body=("LeftShoulder", "RightShoulder", "LeftElbow", "RightElbow", "LeftWrist", "RightWrist",
          "LeftHip", "RightHip", "LeftKnee", "RightKnee", "LeftAnkle", "RightAnkle"),
    head="Head",
    head_centre=(("Head", 0.4), ("Head_end", 0.6)),  # 60 % along the head bone
    # 2 cm below both ends of the toe bones, "below" in the toe's own frame.
    soles=("LeftToe", "LeftToe_end", "RightToe", "RightToe_end"),
    sole_offset=np.array([0.0, -0.02, 0.0]),
    scale=0.0254 / 0.45,
    # The CMU rest pose faces +Z with the subject's left along +X and up along +Y.
    head_axes=np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
)
# A user adds a row here for another rig (Mixamo: mixamorig:LeftArm, ...); `corpus` picks it by name.
RIGS = {
    "cmu": CMU_RIG,
    # cgspeed's "DAZ-friendly" CMU conversion (centimetres, real eye joints).
    "daz": Rig(
        body=("lShldr", "rShldr", "lForeArm", "rForeArm", "lHand", "rHand",
              "lThigh", "rThigh", "lShin", "rShin", "lFoot", "rFoot"),
        head="head", head_centre=(("leftEye", 0.5), ("rightEye", 0.5)), centre_back=0.08,
        soles=("lFoot_end", "rFoot_end"), sole_offset=np.array([0.0, -0.02, 0.0]), scale=0.01),
    # Reallusion Character Creator (iClone) CC_Base rig, centimetres, real eye joints.
    "cc": Rig(
        body=("CC_Base_L_Upperarm", "CC_Base_R_Upperarm", "CC_Base_L_Forearm", "CC_Base_R_Forearm",
              "CC_Base_L_Hand", "CC_Base_R_Hand", "CC_Base_L_Thigh", "CC_Base_R_Thigh",
              "CC_Base_L_Calf", "CC_Base_R_Calf", "CC_Base_L_Foot", "CC_Base_R_Foot"),
        head="CC_Base_Head", head_centre=(("CC_Base_L_Eye", 0.5), ("CC_Base_R_Eye", 0.5)), centre_back=0.08,
        soles=("CC_Base_L_ToeBase", "CC_Base_L_BigToe1_end", "CC_Base_R_ToeBase", "CC_Base_R_BigToe1_end"),
        scale=0.01),
    # DeepMimic humanoid3d (`read_deepmimic` names its joints; metres; faces +X, Y up, right +Z).
    "humanoid3d": Rig(
        body=("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
        head="neck", head_centre=(("head", 1.0),),
        soles=("left_heel", "left_toe", "right_heel", "right_toe"), scale=1.0,
        head_axes=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])),
}

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


def _derived_head_axes(bvh, rig, reference):
    """(3, 3) head axes in the head joint's frame, from a pose where the rig stands upright:
    `reference` a frame index, or None for the rest pose (zero rotations)."""
    if reference is None:
        quats = np.zeros((1, len(bvh.names), 4))
        quats[..., 3] = 1.0
        pose = dataclasses.replace(bvh, translations=bvh.translations[:1], quats=quats)
    else:
        pose = dataclasses.replace(bvh, translations=bvh.translations[reference:reference + 1],
                                   quats=bvh.quats[reference:reference + 1])
    pos, rot = forward_kinematics(pose, 1.0)
    up = np.array([0.0, 0.0, 1.0])
    left = pos[0, bvh.index(rig.body[0])] - pos[0, bvh.index(rig.body[1])]
    left = left - (left @ up) * up
    left /= np.linalg.norm(left)
    axes_world = np.stack([np.cross(left, up), left, up], 1)
    return rot[0, bvh.index(rig.head)].T @ axes_world


def bvh_to_coco(bvh, rig=CMU_RIG):
    """COCO-17 keypoints (F, 17, 3) float32 of a `Bvh`, metres, Z up, on the floor, pelvis at
    x = y = 0 in frame 0 (README "How the keypoints were made"). A rig without `head_axes` takes
    them from the rest pose (`load_bvh` sets them from a reference frame where it has one)."""
    names = rig.body + (rig.head,) + tuple(n for n, _ in rig.head_centre) + rig.soles
    missing = [n for n in names if n not in bvh.names]
    if missing:
        raise ValueError(f"skeleton lacks the rig's joints {missing}")
    pos, rot = forward_kinematics(bvh, rig.scale)
    body = pos[:, [bvh.index(n) for n in rig.body]]
    head_rot = rot[:, bvh.index(rig.head)]
    axes = rig.head_axes if rig.head_axes is not None else _derived_head_axes(bvh, rig, None)
    centre = sum(w * pos[:, bvh.index(n)] for n, w in rig.head_centre)
    centre = centre - rig.centre_back * head_rot @ axes[:, 0]
    face = centre[:, None] + np.einsum("fij,kj->fki", head_rot, FACE_OFFSETS @ axes.T)
    kp = np.concatenate([face, body], 1)
    sole_idx = [bvh.index(n) for n in rig.soles]
    soles = pos[:, sole_idx] + np.einsum("fkij,j->fki", rot[:, sole_idx], rig.sole_offset)
    kp[..., 2] -= np.percentile(soles[..., 2].min(1), FLOOR_PERCENTILE)
    kp[..., :2] -= skeleton.mid_hip(kp[0])[:2]
    return kp.astype(np.float32)


def load_bvh(path, fps=30.0, rig=CMU_RIG, source_fps=None, drop_frames=0, reference=None):
    """Read a BVH file and convert it to COCO-17 keypoints (T, 17, 3) float32 at `fps`.

    source_fps: the true frame rate where the header's is wrong; drop_frames: frames cut from the
    start after `reference` (a frame index for the head axes, e.g. a prepended T-pose) is read.
    """
    try:
        bvh = read_bvh(path)
        if reference is not None:
            axes = _derived_head_axes(bvh, rig, reference)
            rig = dataclasses.replace(rig, head_axes=axes)
        if source_fps:
            bvh = dataclasses.replace(bvh, frame_time=1.0 / source_fps)
        if drop_frames:
            bvh = dataclasses.replace(bvh, translations=bvh.translations[drop_frames:],
                                      quats=bvh.quats[drop_frames:])
        kp = bvh_to_coco(resample(bvh, fps), rig)
    except ValueError as e:
        raise ValueError(e if str(e).startswith(str(path)) else f"{path}: {e}") from None
    chex.assert_shape(kp, (None, skeleton.NUM_JOINTS, 3))
    return kp


# DeepMimic humanoid3d (xbpeng/DeepMimic data/characters/humanoid3d.txt, metres): (name, parent,
# offset in the parent's frame, number of rotation values in a frame row: 4 a quaternion wxyz, 1 a
# revolute angle about z, 0 fixed). Frame rows are: dt, root position, then these values in order.
HUMANOID3D = (
    ("root", -1, (0.0, 0.0, 0.0), 4),
    ("chest", 0, (0.0, 0.236151, 0.0), 4),
    ("neck", 1, (0.0, 0.223894, 0.0), 4),
    ("right_hip", 0, (0.0, 0.0, 0.084887), 4),
    ("right_knee", 3, (0.0, -0.421546, 0.0), 1),
    ("right_ankle", 4, (0.0, -0.409870, 0.0), 4),
    ("right_shoulder", 1, (-0.02405, 0.24350, 0.18311), 4),
    ("right_elbow", 6, (0.0, -0.274788, 0.0), 1),
    ("left_hip", 0, (0.0, 0.0, -0.084887), 4),
    ("left_knee", 8, (0.0, -0.421546, 0.0), 1),
    ("left_ankle", 9, (0.0, -0.409870, 0.0), 4),
    ("left_shoulder", 1, (-0.02405, 0.24350, -0.18311), 4),
    ("left_elbow", 11, (0.0, -0.274788, 0.0), 1),
    # Fixed points: wrists, the head sphere's centre, heel and toe of each foot box's sole.
    ("right_wrist", 7, (0.0, -0.258947, 0.0), 0),
    ("left_wrist", 12, (0.0, -0.258947, 0.0), 0),
    ("head", 2, (0.0, 0.175, 0.0), 0),
    ("right_heel", 5, (-0.0435, -0.05, 0.0), 0),
    ("right_toe", 5, (0.1335, -0.05, 0.0), 0),
    ("left_heel", 10, (-0.0435, -0.05, 0.0), 0),
    ("left_toe", 10, (0.1335, -0.05, 0.0), 0),
)


def read_deepmimic(path):
    """Parse a DeepMimic humanoid3d motion (JSON with "Frames" rows of 44 values) into a `Bvh`."""
    path = Path(path)
    try:
        frames = np.asarray(json.loads(path.read_text())["Frames"], np.float64)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: key 'Frames': not a DeepMimic motion ({e})") from None
    width = 1 + 3 + sum(n for *_, n in HUMANOID3D)
    if frames.ndim != 2 or frames.shape[1] != width or len(frames) < 2:
        raise ValueError(f"{path}: key 'Frames': expected rows of {width} values, got shape {frames.shape}")
    F, J = len(frames), len(HUMANOID3D)
    translations = np.broadcast_to(np.array([o for _, _, o, _ in HUMANOID3D]), (F, J, 3)).copy()
    translations[:, 0] = frames[:, 1:4]
    quats = np.zeros((F, J, 4))
    quats[..., 3] = 1.0
    col = 4
    for j, (*_, n) in enumerate(HUMANOID3D):
        if n == 4:
            quats[:, j] = frames[:, col:col + 4][:, [1, 2, 3, 0]]  # wxyz -> scipy's xyzw
        elif n == 1:
            quats[:, j] = Rotation.from_rotvec(frames[:, col, None] * np.array([0.0, 0.0, 1.0])).as_quat()
        col += n
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    dt = float(np.median(frames[:, 0]))
    return Bvh(tuple(n for n, *_ in HUMANOID3D), np.array([p for _, p, *_ in HUMANOID3D]),
               translations, quats, dt)


def load_deepmimic(path, fps=30.0):
    """A DeepMimic humanoid3d motion file as COCO-17 keypoints (T, 17, 3) float32 at `fps`."""
    try:
        kp = bvh_to_coco(resample(read_deepmimic(path), fps), RIGS["humanoid3d"])
    except ValueError as e:
        raise ValueError(e if str(e).startswith(str(path)) else f"{path}: {e}") from None
    return kp


def check_motion(kp3d, path, max_limb_std=0.02, max_step=0.6):
    """Raise a one-line ValueError naming `path` unless kp3d (T, 17, 3) at 30 fps is a plausible
    body: constant limbs (relative std below `max_limb_std`), no joint jumping more than
    `max_step` metres between frames (18 m/s: a glitch, not a motion), upright at some time (head 0.3 m above
    the pelvis at the 95th percentile), the nose in front of the head (face axes right), bent
    knees pointing forward (not mirrored)."""
    lengths = np.stack([np.linalg.norm(kp3d[:, a] - kp3d[:, b], axis=-1) for a, b in skeleton.LIMB_BONES], 1)
    rel = (lengths.std(0) / lengths.mean(0)).max()
    if not np.isfinite(kp3d).all():
        raise ValueError(f"{path}: keypoints3d: not finite")
    if rel > max_limb_std:
        raise ValueError(f"{path}: limb lengths vary by {rel:.1%} over time (wrong rig table row?)")
    step = np.linalg.norm(np.diff(kp3d, axis=0), axis=-1).max(1)
    if step.max() > max_step:
        raise ValueError(f"{path}: a joint jumps {step.max():.2f} m between frames {step.argmax()} and "
                         f"{step.argmax() + 1} at 30 fps (a glitch)")
    pelvis = skeleton.mid_hip(kp3d)
    ears = kp3d[:, 3:5].mean(1)
    if np.percentile(ears[:, 2] - pelvis[:, 2], 95) < 0.3:
        raise ValueError(f"{path}: the head never rises above the pelvis (wrong up axis?)")
    left = kp3d[:, skeleton.L_HIP] - kp3d[:, skeleton.R_HIP]
    up = ears - pelvis
    forward = np.cross(left, up)
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True) + 1e-9
    if np.mean(np.einsum("td,td->t", kp3d[:, 0] - ears, forward) > 0) < 0.8:
        raise ValueError(f"{path}: the nose points backwards in most frames (wrong head axes, or mirrored?)")
    bends = []
    for hip, knee, ankle in ((11, 13, 15), (12, 14, 16)):
        thigh, shin = kp3d[:, knee] - kp3d[:, hip], kp3d[:, ankle] - kp3d[:, knee]
        cos = np.einsum("td,td->t", thigh, shin) / (np.linalg.norm(thigh, axis=-1) * np.linalg.norm(shin, axis=-1))
        bent = cos < np.cos(np.radians(20))
        out = kp3d[:, knee] - 0.5 * (kp3d[:, hip] + kp3d[:, ankle])
        bends.append(np.einsum("td,td->t", out, forward)[bent])
    bends = np.concatenate(bends)
    if bends.size >= 10 and np.mean(bends > 0) < 0.8:
        raise ValueError(f"{path}: bent knees point backwards in {np.mean(bends <= 0):.0%} of frames (mirrored?)")


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
