"""BVH forward kinematics, npz clips and the shipped-clip registry (anylift_jax.data.mocap)."""
import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.spatial.transform import Rotation

from anylift_jax import skeleton
from anylift_jax.data import cameras, mocap

# A 3-joint chain whose root lists its channels interleaved and in an unusual order.
CHAIN_BVH = """HIERARCHY
ROOT Root
{
  OFFSET 0 0 0
  CHANNELS 6 Yrotation Xposition Zrotation Yposition Xrotation Zposition
  JOINT Child
  {
    OFFSET 0 1 0
    CHANNELS 1 Xrotation
    End Site
    {
      OFFSET 0 0 2
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.1
0 1 90 2 90 3 90
0 1 90 2 0 3 0
"""


def _write(tmp_path, text, name="x.bvh"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["131_01", "131_02", "131_03"])
def test_bvh_conversion_reproduces_shipped_npz(name):
    # The shipped npz were made by an independent converter from the same BVH (assets README).
    ours = mocap.load_bvh(mocap.ASSETS / f"{name}.bvh")
    ref = mocap.load_shipped(name)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    err = np.linalg.norm(ours - ref, axis=-1)
    assert err.max() < 1e-3, f"max error {err.max() * 1e3:.3f} mm"


def test_forward_kinematics_closed_form(tmp_path):
    bvh = mocap.read_bvh(_write(tmp_path, CHAIN_BVH))
    assert bvh.names == ("Root", "Child", "Child_end")
    np.testing.assert_array_equal(bvh.parents, [-1, 0, 1])
    pos, rot = mocap.forward_kinematics(bvh, scale=0.5)
    # Rotation channels compose in file order (Y, Z, X): frame 0 is Rz(90) Rx(90), which takes the
    # child offset (0, 1, 0) to (0, 0, 1); its child's Rx(90) adds Rz(90) Rx(180) (0, 0, 2) = (0, 0, -2).
    # Frame 1 is Rz(90): offset -> (-1, 0, 0), end site offset unrotated.
    bvh_frame = np.array([
        [[1, 2, 3], [1, 2, 4], [1, 2, 2]],
        [[1, 2, 3], [0, 2, 3], [0, 2, 5]],
    ], np.float64)
    # Scale 0.5, then Y up -> Z up: (x, y, z) -> (x, -z, y).
    want = 0.5 * np.stack([bvh_frame[..., 0], -bvh_frame[..., 2], bvh_frame[..., 1]], -1)
    np.testing.assert_allclose(pos, want, atol=1e-12)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)


def test_resample_slerps_rotations_and_interpolates_translation(tmp_path):
    # One joint turning about Y by 10 degrees per frame while moving 1 unit per frame along X.
    frames = "\n".join(f"{i} 0 0 {10 * i}" for i in range(5))
    text = ("HIERARCHY\nROOT R\n{\n OFFSET 0 0 0\n CHANNELS 4 Xposition Yposition Zposition Yrotation\n"
            " End Site\n {\n  OFFSET 0 0 1\n }\n}\nMOTION\nFrames: 5\nFrame Time: 0.0166666666666667\n"
            + frames + "\n")
    bvh = mocap.read_bvh(_write(tmp_path, text))
    up = mocap.resample(bvh, 120.0)
    assert up.num_frames == 9
    angle = np.rad2deg(np.linalg.norm(Rotation.from_quat(up.quats[:, 0]).as_rotvec(), axis=-1))
    np.testing.assert_allclose(angle, 5.0 * np.arange(9), atol=1e-9)
    np.testing.assert_allclose(up.translations[:, 0, 0], 0.5 * np.arange(9), atol=1e-9)
    down = mocap.resample(bvh, 30.0)
    assert down.num_frames == 3
    np.testing.assert_allclose(np.abs(np.sum(down.quats[:, 0] * bvh.quats[::2, 0], -1)), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(mocap.SHIPPED))
def test_shipped_clip_is_a_plausible_body(name):
    kp = mocap.load_shipped(name)
    assert kp.dtype == np.float32 and kp.shape[1:] == (17, 3) and kp.shape[0] > 30
    for a, b in skeleton.LIMB_BONES:
        length = np.linalg.norm(kp[:, a] - kp[:, b], axis=-1)
        assert length.std() / length.mean() < 1e-5, (a, b)
        assert 0.15 < length.mean() < 0.55, (a, b)
    # Stature: the ears sit about 12 cm below the top of the head.
    ears = kp[:, [skeleton.INDEX["l_ear"], skeleton.INDEX["r_ear"]], 2].mean(1)
    assert 1.4 < np.percentile(ears, 95) + 0.12 < 1.9
    ankles = kp[:, list(skeleton.ANKLES), 2]
    assert 0.03 < ankles.min() < 0.12
    np.testing.assert_allclose(skeleton.mid_hip(kp[0])[:2], 0.0, atol=1e-6)


def test_registry_split():
    assert set(mocap.HELDOUT) <= set(mocap.SHIPPED)
    assert set(mocap.TRAIN) | set(mocap.HELDOUT) == set(mocap.SHIPPED)
    assert not set(mocap.TRAIN) & set(mocap.HELDOUT)
    assert len(mocap.TRAIN) == 5
    with pytest.raises(KeyError, match="nope"):
        mocap.load_shipped("nope")


def test_load_npz_round_trip_and_errors(tmp_path):
    kp = np.random.default_rng(0).normal(size=(4, 17, 3))
    np.savez(tmp_path / "ok.npz", keypoints3d=kp, fps=np.float64(25.0))
    got, fps = mocap.load_npz(tmp_path / "ok.npz")
    assert got.dtype == np.float32 and fps == 25.0
    np.testing.assert_allclose(got, kp, rtol=1e-6)

    np.savez(tmp_path / "nofps.npz", keypoints3d=kp)
    with pytest.raises(ValueError, match=r"nofps\.npz: missing key 'fps'"):
        mocap.load_npz(tmp_path / "nofps.npz")
    np.savez(tmp_path / "shape.npz", keypoints3d=kp[..., :2], fps=30.0)
    with pytest.raises(ValueError, match=r"shape\.npz: key 'keypoints3d'"):
        mocap.load_npz(tmp_path / "shape.npz")
    np.savez(tmp_path / "pickle.npz", keypoints3d=np.array([kp, None], dtype=object), fps=30.0)
    with pytest.raises(ValueError, match=r"pickle\.npz: key 'keypoints3d' holds pickled objects"):
        mocap.load_npz(tmp_path / "pickle.npz")


def test_bvh_errors_name_the_file(tmp_path):
    bad = CHAIN_BVH.replace("0 1 90 2 0 3 0\n", "0 1 90\n")
    with pytest.raises(ValueError, match=r"x\.bvh: MOTION has"):
        mocap.read_bvh(_write(tmp_path, bad))
    with pytest.raises(ValueError, match=r"y\.bvh: skeleton lacks the rig's joints \['LeftShoulder'"):
        mocap.load_bvh(_write(tmp_path, CHAIN_BVH, "y.bvh"))


def test_mirror_is_a_reflection_with_left_right_swapped():
    kp = mocap.load_shipped("amp_humanoid_walk")
    m = mocap.mirror(kp)
    np.testing.assert_array_equal(mocap.mirror(m), kp)
    # Bone lengths are preserved; the reflection has determinant -1 (scipy: not a rotation).
    for a, b in skeleton.BONES:
        np.testing.assert_allclose(np.linalg.norm(m[:, a] - m[:, b], axis=-1),
                                   np.linalg.norm(kp[:, skeleton.FLIP_PERM[a]] - kp[:, skeleton.FLIP_PERM[b]], axis=-1), atol=1e-6)
    np.testing.assert_allclose(m[:, skeleton.L_HIP], kp[:, skeleton.R_HIP] * [1, -1, 1], atol=1e-7)
    # The mirrored person faces the mirrored direction (facing is computed from left/right joints).
    np.testing.assert_allclose(cameras.facing(m[0]), cameras.facing(kp[0]) * [1, -1, 1], atol=1e-6)


def test_retime_matches_scipy_interpolation():
    kp = mocap.load_shipped("amp_humanoid_run")
    for speed in (0.8, 1.0, 1.25, 2.0):
        out = mocap.retime(kp, speed)
        t = np.arange(len(out)) * speed
        assert t[-1] <= len(kp) - 1 < t[-1] + speed + 1e-6
        ref = interp1d(np.arange(len(kp)), kp, axis=0)(t)
        np.testing.assert_allclose(out, ref, atol=1e-5)
