"""BVH export checked by forward kinematics written here (scipy Euler angles), AMASS npz export."""
from importlib import resources

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from anylift_jax import export, skeleton
from anylift_jax.data import mocap
from anylift_jax.io.archive import ArchiveError

# BVH joint name -> COCO-17 keypoint, the file's public naming.
NAMES = {
    "LeftHip": "l_hip", "LeftKnee": "l_knee", "LeftAnkle": "l_ankle",
    "RightHip": "r_hip", "RightKnee": "r_knee", "RightAnkle": "r_ankle",
    "LeftShoulder": "l_shoulder", "LeftElbow": "l_elbow", "LeftWrist": "l_wrist",
    "RightShoulder": "r_shoulder", "RightElbow": "r_elbow", "RightWrist": "r_wrist",
    "Nose": "nose", "LeftEye": "l_eye", "RightEye": "r_eye", "LeftEar": "l_ear",
    "RightEar": "r_ear",
}


def parse_bvh(text):
    """Minimal BVH reader: joints [(name, parent index, offset, channels)], frames (T, C), dt."""
    tokens = text.split()
    pos = 0
    joints = []

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def joint(parent):
        take()  # ROOT / JOINT
        name = take()
        assert take() == "{"
        assert take() == "OFFSET"
        offset = np.array([float(take()) for _ in range(3)])
        assert take() == "CHANNELS"
        channels = [take() for _ in range(int(take()))]
        index = len(joints)
        joints.append((name, parent, offset, channels))
        while True:
            if tokens[pos] == "}":
                take()
                return
            if tokens[pos] == "End":
                take(), take(), take(), take()  # End Site { OFFSET
                [take() for _ in range(3)]
                assert take() == "}"
            else:
                joint(index)

    assert take() == "HIERARCHY"
    joint(-1)
    assert take() == "MOTION" and take() == "Frames:"
    n = int(take())
    assert take() == "Frame" and take() == "Time:"
    dt = float(take())
    frames = np.array(tokens[pos:], np.float64).reshape(n, -1)
    return joints, frames, dt


def fk(joints, frames):
    """World positions {name: (T, 3)} (BVH space) by the usual BVH semantics: intrinsic Euler
    angles in channel order, child = parent + R_parent · OFFSET, root position from channels."""
    col, glob_r, glob_p = 0, [], []
    out = {}
    for name, parent, offset, channels in joints:
        vals = frames[:, col:col + len(channels)]
        col += len(channels)
        rot_names = [c for c in channels if c.endswith("rotation")]
        angles = vals[:, [channels.index(c) for c in rot_names]]
        local = Rotation.from_euler("".join(c[0] for c in rot_names), angles,
                                    degrees=True).as_matrix()
        if parent < 0:
            p = offset + vals[:, [channels.index(f"{a}position") for a in "XYZ"]]
            R = local
        else:
            p = glob_p[parent] + glob_r[parent] @ offset
            R = glob_r[parent] @ local
        glob_r.append(R)
        glob_p.append(p)
        out[name] = p
    return out


def _roundtrip_error(kp, fps=30.0):
    """Per-keypoint distances (T, 17) in metres between kp and FK of its BVH."""
    joints, frames, dt = parse_bvh(export.to_bvh(kp, fps))
    assert dt == pytest.approx(1 / fps)
    assert len(frames) == len(kp)
    world = {n: p @ export.TO_BVH for n, p in fk(joints, frames).items()}  # back to Z up
    rebuilt = np.zeros_like(kp, dtype=np.float64)
    for name, coco in NAMES.items():
        rebuilt[:, skeleton.INDEX[coco]] = world[name]
    return np.linalg.norm(rebuilt - kp, axis=-1)


def _rigid_clip(T=60, seed=0):
    """COCO-17 keypoints of an articulated body with constant distances, built here: a rigid
    torso, a head rotating about the neck point, limbs of fixed length with moving directions."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, T)
    body = Rotation.from_rotvec(np.stack([0.3 * np.sin(t), 0.2 * np.cos(2 * t), 1.5 * t], -1))
    head = body * Rotation.from_rotvec(np.stack([0.4 * np.sin(3 * t), 0.3 * np.sin(t),
                                                 0.5 * np.cos(t)], -1))
    root = np.stack([np.sin(t), 0.5 * t, 0.95 + 0.05 * np.sin(4 * t)], -1)
    kp = np.zeros((T, 17, 3))
    I = skeleton.INDEX  # noqa: E741
    kp[:, I["l_hip"]] = root + body.apply([0.1, 0, 0])
    kp[:, I["r_hip"]] = root + body.apply([-0.1, 0, 0])
    neck = root + body.apply([0.0, 0.02, 0.5])
    kp[:, I["l_shoulder"]] = neck + body.apply([0.18, 0, 0])
    kp[:, I["r_shoulder"]] = neck + body.apply([-0.18, 0, 0])
    face = {"nose": [0, 0.1, 0.22], "l_eye": [0.035, 0.08, 0.25], "r_eye": [-0.035, 0.08, 0.25],
            "l_ear": [0.075, -0.01, 0.21], "r_ear": [-0.075, -0.01, 0.21]}
    for name, offset in face.items():
        kp[:, I[name]] = neck + head.apply(offset)
    limbs = [("l_shoulder", "l_elbow", 0.28), ("l_elbow", "l_wrist", 0.25),
             ("r_shoulder", "r_elbow", 0.28), ("r_elbow", "r_wrist", 0.25),
             ("l_hip", "l_knee", 0.42), ("l_knee", "l_ankle", 0.4),
             ("r_hip", "r_knee", 0.42), ("r_knee", "r_ankle", 0.4)]
    for a, b, length in limbs:
        phase, base = rng.uniform(0, 2 * np.pi, 3), rng.normal(0, 1, 3)
        d = body.apply(base + 1.2 * np.sin(t[:, None] * (1 + np.arange(3)) + phase))
        kp[:, I[b]] = kp[:, I[a]] + length * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return kp.astype(np.float32)


def test_bvh_fk_reproduces_constant_length_skeleton():
    kp = _rigid_clip()
    err = _roundtrip_error(kp)
    assert err.max() < 1e-3  # metres: < 1 mm


def test_bvh_of_real_mocap():
    """131_01 (walk with a deep crouch): legs and arms are rigid, the spine bends. The mid-shoulder
    sits at the median spine length along the true spine direction, so the shoulder girdle and
    the arms are off by exactly that length's deviation, and the legs are exact."""
    with np.load(resources.files("anylift_jax") / "assets/mocap/131_01.npz") as f:
        kp = np.asarray(f["keypoints3d"], np.float32)
    err = _roundtrip_error(kp)
    legs = [skeleton.INDEX[n] for n in ("l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
                                        "r_ankle")]
    assert err[:, legs].max() < 1e-3
    spine = np.linalg.norm(kp[:, list(skeleton.SHOULDERS)].mean(1) - skeleton.mid_hip(kp), axis=-1)
    deviation = np.abs(spine - np.median(spine))
    assert deviation.max() > 0.01  # the test means something: the spine does change length
    arms = list(range(skeleton.INDEX["l_shoulder"], skeleton.INDEX["r_wrist"] + 1))
    np.testing.assert_allclose(err[:, arms], np.repeat(deviation[:, None], len(arms), 1),
                               atol=1e-4)


def test_bvh_read_by_data_mocap(tmp_path):
    """The project's own BVH reader (data/mocap.py, written independently) agrees."""
    kp = _rigid_clip(T=20)
    export.write_bvh(tmp_path / "clip.bvh", kp, 30.0)
    bvh = mocap.read_bvh(tmp_path / "clip.bvh")
    pos, _ = mocap.forward_kinematics(bvh, scale=1.0)  # its default base turns Y up into Z up
    for name, coco in NAMES.items():
        np.testing.assert_allclose(pos[:, bvh.index(name)], kp[:, skeleton.INDEX[coco]],
                                   atol=1e-4, err_msg=name)


def test_bvh_text_structure(tmp_path):
    kp = _rigid_clip(T=5)
    path = tmp_path / "clip.bvh"
    export.write_bvh(path, kp, 25.0)
    joints, frames, dt = parse_bvh(path.read_text())
    assert [j[0] for j in joints][:2] == ["Hips", "LeftHip"]
    assert {n for n, *_ in joints} >= set(NAMES)
    assert frames.shape == (5, 6 + 3 * (len(joints) - 1))
    assert dt == pytest.approx(0.04)
    # Y up: the head is above the hips in BVH space.
    pos = fk(joints, frames)
    assert (pos["Nose"][:, 1] > pos["Hips"][:, 1] + 0.3).all()
    with pytest.raises(ArchiveError, match="keypoints3d.*expected shape"):
        export.to_bvh(np.zeros((5, 18, 3), np.float32), 30.0)


def test_euler_against_scipy():
    rng = np.random.default_rng(3)
    R = Rotation.random(50, random_state=4)
    mats = R.as_matrix()
    # Gimbal lock: X at ±90°.
    lock = Rotation.from_euler("ZXY", [[30, 90, 20], [-40, -90, 10]], degrees=True).as_matrix()
    tiny = Rotation.from_rotvec(rng.normal(0, 1e-8, (2, 3))).as_matrix()
    mats = np.concatenate([mats, lock, tiny])
    angles = export._euler_zxy(mats)
    back = Rotation.from_euler("ZXY", angles).as_matrix()
    np.testing.assert_allclose(back, mats, atol=1e-6)


def test_amass_export(tmp_path):
    T = 7
    rng = np.random.default_rng(5)
    out = {"keypoints3d": rng.normal(size=(T, 17, 3)).astype(np.float32),
           "body_model": np.asarray("smpl"),
           "global_orient": rng.normal(size=(T, 3)).astype(np.float32),
           "body_pose": rng.normal(size=(T, 69)).astype(np.float32),
           "betas": rng.normal(size=(10,)).astype(np.float32),
           "transl": rng.normal(size=(T, 3)).astype(np.float32)}
    np.savez(tmp_path / "clip.npz", **out)
    code = export.main(["--clip", str(tmp_path / "clip.npz"), "--amass", str(tmp_path / "a.npz"),
                        "--bvh", str(tmp_path / "a.bvh"), "--fps", "60"])
    assert code == 0
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert f["poses"].shape == (T, 72)
        np.testing.assert_array_equal(f["poses"][:, :3], out["global_orient"])
        np.testing.assert_array_equal(f["poses"][:, 3:], out["body_pose"])
        np.testing.assert_array_equal(f["trans"], out["transl"])
        np.testing.assert_array_equal(f["betas"], out["betas"])
        assert float(f["mocap_framerate"]) == 60.0 and str(f["gender"]) == "neutral"
    assert (tmp_path / "a.bvh").read_text().startswith("HIERARCHY")
    anny = dict(out, body_model=np.asarray("anny"))
    with pytest.raises(ArchiveError, match="AMASS export needs SMPL parameters, got body model "
                                           "'anny'"):
        export.amass_arrays(anny, 30.0)
    no_pose = {k: v for k, v in out.items() if k != "body_pose"}
    with pytest.raises(ArchiveError, match="x.npz: key 'body_pose': missing"):
        export.amass_arrays(no_pose, 30.0, "x.npz")
