"""Export lifted motion: COCO-17 keypoints to BVH, SMPL outputs to AMASS-style npz.

    python -m anylift_jax.export --clip OUT/clip.npz [--bvh FILE.bvh] [--amass FILE.npz] [--fps 30]

BVH (Blender: File > Import > Motion Capture (.bvh), default settings). Units are metres and the
file is Y up, Z forward (the BVH habit); Blender's default import axes (forward −Z, up Y) turn it
back into our Z-up world exactly. The skeleton is a hierarchy of the COCO-17 joints plus three
virtual joints, with rotation channels only below the root (the one BVH layout every importer reads
the same way):

    Hips (mid-hip; 6 channels) ├ LeftHip ─ LeftKnee ─ LeftAnkle   (and RightHip …)
                               └ Spine (at Hips) ─ Neck (mid-shoulder)
        Neck ├ LeftShoulder ─ LeftElbow ─ LeftWrist   (and RightShoulder …)
             └ Head (at Neck) ─ Nose ─ LeftEye, RightEye, LeftEar, RightEar

Rest pose: T-pose facing +Z. Each bone's OFFSET length is the median over frames of that distance
in the clip. Rotations come from bone directions: Hips and Neck take the frame spanned by the
left–right pair (hips, shoulders) and the up direction (to Neck, to Nose); a joint with one child
is the smallest rotation (swing) that points its bone at the child; Nose is the rotation that best
fits the four face points (Kabsch); end joints have identity local rotation. Forward kinematics of
the file therefore points every bone exactly at its keypoint (the face: best fit), at the median
bone length: it reproduces the keypoints to float rounding (µm) when the clip's distances are
constant (a body model's joints, rigid mocap limbs); where they vary, the error is the deviation
from the median length (shipped mocap: legs exact, the bending spine moves arms and head by
1–14 mm on average, up to 43 mm in the deep crouch of 131_01).

AMASS npz (SMPL outputs only, `body_model` "smpl"): `poses` (T, 72) = global_orient ‖ body_pose,
`trans` (T, 3), `betas`, `mocap_framerate`, `gender` ("neutral"); axis-angle, world Z up as AMASS.
"""
import argparse
import sys
from pathlib import Path

import jax
import numpy as np

from anylift_jax import skeleton
from anylift_jax.evaluate import load_keypoints3d
from anylift_jax.geometry.align import umeyama
from anylift_jax.geometry.rotations import axis_angle_to_matrix
from anylift_jax.io.archive import ArchiveError, check_array, load_npz

# Our world (Z up) -> BVH space (Y up, −our y forward): (x, y, z) -> (x, z, −y).
TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_I = skeleton.INDEX
_FACE = ("LeftEye", "RightEye", "LeftEar", "RightEar")
# BVH joint -> (parent, rest direction of its offset from the parent, unit, Y up, facing +Z).
# Face offsets are not listed: they come from the clip (see _face_rest).
JOINTS = {
    "Hips": (None, (0, 0, 0)),
    "LeftHip": ("Hips", (1, 0, 0)),
    "LeftKnee": ("LeftHip", (0, -1, 0)),
    "LeftAnkle": ("LeftKnee", (0, -1, 0)),
    "RightHip": ("Hips", (-1, 0, 0)),
    "RightKnee": ("RightHip", (0, -1, 0)),
    "RightAnkle": ("RightKnee", (0, -1, 0)),
    "Spine": ("Hips", (0, 0, 0)),
    "Neck": ("Spine", (0, 1, 0)),
    "LeftShoulder": ("Neck", (1, 0, 0)),
    "LeftElbow": ("LeftShoulder", (1, 0, 0)),
    "LeftWrist": ("LeftElbow", (1, 0, 0)),
    "RightShoulder": ("Neck", (-1, 0, 0)),
    "RightElbow": ("RightShoulder", (-1, 0, 0)),
    "RightWrist": ("RightElbow", (-1, 0, 0)),
    "Head": ("Neck", (0, 0, 0)),
    "Nose": ("Head", (0, 1, 0)),
    **{name: ("Nose", None) for name in _FACE},
}
# BVH joint -> COCO-17 keypoint; the virtual joints are "mid_hip" and "mid_shoulder".
KEYPOINT = {
    "Hips": "mid_hip", "Spine": "mid_hip", "Neck": "mid_shoulder", "Head": "mid_shoulder",
    "LeftHip": "l_hip", "LeftKnee": "l_knee", "LeftAnkle": "l_ankle",
    "RightHip": "r_hip", "RightKnee": "r_knee", "RightAnkle": "r_ankle",
    "LeftShoulder": "l_shoulder", "LeftElbow": "l_elbow", "LeftWrist": "l_wrist",
    "RightShoulder": "r_shoulder", "RightElbow": "r_elbow", "RightWrist": "r_wrist",
    "Nose": "nose", "LeftEye": "l_eye", "RightEye": "r_eye", "LeftEar": "l_ear",
    "RightEar": "r_ear",
}
# Purely cosmetic bone tails of the end joints (metres, joint-local): feet forward, hands along
# the arm, face points up. They carry no data.
END_SITES = {"LeftAnkle": (0, 0, 0.08), "RightAnkle": (0, 0, 0.08),
             "LeftWrist": (0.08, 0, 0), "RightWrist": (-0.08, 0, 0),
             **{name: (0, 0.02, 0) for name in _FACE}}
ROOT_CHANNELS = "Xposition Yposition Zposition Zrotation Xrotation Yrotation"
ROT_CHANNELS = "Zrotation Xrotation Yrotation"
_EPS = 1e-9
# Jitted once per clip length (op-by-op eager dispatch would compile every op for every length).
_axis_angle_to_matrix = jax.jit(axis_angle_to_matrix)
_kabsch = jax.jit(lambda src, dst: umeyama(src, dst, with_scale=False)[1])


def _children(name):
    return [c for c, (p, _) in JOINTS.items() if p == name]


def _positions(kp):
    """(T, 17, 3) world -> {BVH joint: (T, 3) in BVH space}."""
    kp = kp.astype(np.float64) @ TO_BVH.T
    virtual = {"mid_hip": kp[:, skeleton.HIPS].mean(1),
               "mid_shoulder": kp[:, skeleton.SHOULDERS].mean(1)}
    return {j: virtual[k] if k in virtual else kp[:, _I[k]] for j, k in KEYPOINT.items()}


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _frame(pair_axis, up):
    """Rotations (T, 3, 3) with columns x = pair axis, y = up made orthogonal to x, z = x × y."""
    x = _unit(pair_axis)
    y = _unit(up - (up * x).sum(-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], -1)


def _swing(u, v):
    """Smallest rotations (T, 3, 3) taking unit vectors u to unit vectors v (T, 3)."""
    axis = np.cross(u, v)
    sin, cos = np.linalg.norm(axis, axis=-1), (u * v).sum(-1)
    # Opposite vectors: any axis perpendicular to u will do.
    other = np.where(np.abs(u[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    axis = np.where((sin < 1e-6)[:, None] & (cos < 0)[:, None], np.cross(u, other), axis)
    aa = _unit(axis) * np.arctan2(sin, cos)[:, None]
    return np.asarray(_axis_angle_to_matrix(aa.astype(np.float32)), np.float64)


def _face_rest(pos):
    """Rest offsets {face joint: (3,)} from Nose: the clip's face points in a head frame (ear
    axis, forward = nose − mid-ear), averaged over frames."""
    ears = pos["LeftEar"] - pos["RightEar"]
    forward = pos["Nose"] - (pos["LeftEar"] + pos["RightEar"]) / 2
    x = _unit(ears)
    z = _unit(forward - (forward * x).sum(-1, keepdims=True) * x)
    head = np.stack([x, np.cross(z, x), z], -1)  # columns: left, up, forward
    return {f: np.einsum("tji,tj->ti", head, pos[f] - pos["Nose"]).mean(0) for f in _FACE}


def _solve(kp):
    """Offsets {joint: (3,)}, root positions (T, 3) and local rotations {joint: (T, 3, 3)}."""
    pos = _positions(kp)
    face = _face_rest(pos)
    offsets = {}
    for name, (parent, direction) in JOINTS.items():
        if parent is None:
            offsets[name] = np.zeros(3)
        elif direction is None:
            offsets[name] = face[name]
        else:
            length = np.median(np.linalg.norm(pos[name] - pos[parent], axis=-1))
            offsets[name] = length * np.asarray(direction, np.float64)
    glob = {}
    for name, (parent, _) in JOINTS.items():  # parents come before children
        kids = _children(name)
        if name == "Hips":
            glob[name] = _frame(pos["LeftHip"] - pos["RightHip"], pos["Neck"] - pos["Hips"])
        elif name == "Neck":
            glob[name] = _frame(pos["LeftShoulder"] - pos["RightShoulder"],
                                pos["Nose"] - pos["Neck"])
        elif name == "Nose":
            rest = np.stack([np.zeros(3)] + [offsets[f] for f in _FACE])
            now = np.stack([np.zeros_like(pos["Nose"])]
                           + [pos[f] - pos["Nose"] for f in _FACE], 1)
            R = _kabsch(np.broadcast_to(rest, now.shape).astype(np.float32),
                        now.astype(np.float32))
            glob[name] = np.asarray(R, np.float64)
        elif len(kids) == 1:
            (kid,) = kids
            pointing = glob[parent] @ _unit(offsets[kid])
            glob[name] = _swing(pointing, _unit(pos[kid] - pos[name])) @ glob[parent]
        else:  # end joints
            glob[name] = glob[parent]
    local = {n: glob[n] if p is None else np.swapaxes(glob[p], -1, -2) @ glob[n]
             for n, (p, _) in JOINTS.items()}
    return offsets, pos["Hips"], local


def _euler_zxy(R):
    """Intrinsic Z-X-Y Euler angles (T, 3) in radians with R = Rz(a) Rx(b) Ry(c)."""
    b = np.arcsin(np.clip(R[:, 2, 1], -1.0, 1.0))
    a = np.arctan2(-R[:, 0, 1], R[:, 1, 1])
    c = np.arctan2(-R[:, 2, 0], R[:, 2, 2])
    # Gimbal lock (b = ±90°): only a ± c is defined; put it all in a.
    lock = np.abs(R[:, 2, 1]) > 1 - 1e-9
    a = np.where(lock, np.arctan2(R[:, 1, 0], R[:, 0, 0]), a)
    c = np.where(lock, 0.0, c)
    return np.stack([a, b, c], -1)


def to_bvh(kp3d, fps):
    """BVH text of a keypoint clip: kp3d (T, 17, 3) metres, world Z up; fps > 0."""
    kp3d = check_array("keypoints3d", "keypoints3d", kp3d, ("T", skeleton.NUM_JOINTS, 3), {},
                       kinds="f")
    offsets, root, local = _solve(kp3d)
    lines = ["HIERARCHY", *_hierarchy("Hips", offsets, 0)]
    order = list(_depth_first("Hips"))
    # Unwrap over time so that Blender interpolates the shortest way between frames.
    angles = np.concatenate([np.degrees(np.unwrap(_euler_zxy(local[n]), axis=0)) for n in order],
                            1)
    motion = np.concatenate([root, angles], 1)
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in motion]
    return "\n".join(lines) + "\n"


def _hierarchy(name, offsets, depth):
    """Lines of the HIERARCHY section for joint `name` and its subtree."""
    pad = "  " * depth
    parent = JOINTS[name][0]
    channels = ROOT_CHANNELS if parent is None else ROT_CHANNELS
    yield f"{pad}{'ROOT' if parent is None else 'JOINT'} {name}"
    yield pad + "{"
    yield f"{pad}  OFFSET " + " ".join(f"{v:.6f}" for v in offsets[name])
    yield f"{pad}  CHANNELS {len(channels.split())} {channels}"
    for kid in _children(name):
        yield from _hierarchy(kid, offsets, depth + 1)
    if name in END_SITES:
        yield f"{pad}  End Site"
        yield pad + "  {"
        yield f"{pad}    OFFSET " + " ".join(f"{v:.6f}" for v in END_SITES[name])
        yield pad + "  }"
    yield pad + "}"


def _depth_first(name):
    yield name
    for kid in _children(name):
        yield from _depth_first(kid)


def write_bvh(path, kp3d, fps):
    """Write `to_bvh(kp3d, fps)` to path."""
    Path(path).write_text(to_bvh(kp3d, fps))


def amass_arrays(output, fps, source="lifting output"):
    """AMASS-style arrays of a lifting output with SMPL parameters.

    output: the output file's arrays (dict); source: its name for error messages. Raises
    ArchiveError naming source and key when the output holds no SMPL parameters.
    """
    model = str(output.get("body_model", ""))
    if model != "smpl":
        raise ArchiveError(f"{source}: key 'body_model': AMASS export needs SMPL parameters, "
                           f"got body model '{model}'")
    patterns = {"global_orient": ("T", 3), "body_pose": ("T", 69), "transl": ("T", 3),
                "betas": ("B",)}
    dims, arrays = {}, {}
    for key, pattern in patterns.items():
        if key not in output:
            raise ArchiveError(f"{source}: key '{key}': missing (SMPL parameter)")
        arrays[key] = check_array(source, key, output[key], pattern, dims, kinds="f")
    return {"poses": np.concatenate([arrays["global_orient"], arrays["body_pose"]], 1)
            .astype(np.float32),
            "trans": arrays["transl"].astype(np.float32),
            "betas": arrays["betas"].astype(np.float32),
            "mocap_framerate": np.float64(fps), "gender": np.asarray("neutral")}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m anylift_jax.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", required=True, help="lifting output <clip>.npz")
    parser.add_argument("--bvh", help="write the keypoints as BVH here")
    parser.add_argument("--amass", help="write the SMPL parameters as AMASS-style npz here")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    args = parser.parse_args(argv)
    if not (args.bvh or args.amass):
        parser.error("nothing to do: give --bvh and/or --amass")
    try:
        kp3d, _ = load_keypoints3d(args.clip)
        if args.amass:
            arrays, _ = load_npz(args.clip)
            amass = amass_arrays(arrays, args.fps, args.clip)
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.bvh:
        write_bvh(args.bvh, kp3d, args.fps)
        print(f"wrote {args.bvh}")
    if args.amass:
        np.savez(args.amass, **amass)
        print(f"wrote {args.amass}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
