"""Keypoint archive v1: malformed files, round trips, folder reading, atomic writes."""
import os
import zipfile

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from anylift_jax.io import (
    ArchiveError,
    clip_from_arrays,
    read_archive,
    read_clip,
    validate_output,
    write_clip,
    write_output,
)

T = 6


def good_arrays(seed=0, T=T, objects=False):
    """A valid clip: cameras from scipy's random rotations, COCO keypoints inside the image."""
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (T, 1, 1))
    c2w[:, :3, :3] = Rotation.random(T, random_state=seed).as_matrix()
    c2w[:, :3, 3] = rng.normal(size=(T, 3))
    arrays = {
        "keypoints": rng.uniform(0, 640, size=(T, 17, 2)),
        "scores": rng.uniform(0.2, 1.0, size=(T, 17)),
        "intrinsics": np.array([[800.0, 0, 320], [0, 810.0, 240], [0, 0, 1]]),
        "cam_c2w": c2w,
        "image_size": np.array([640, 480]),
        "fps": np.array(30.0),
    }
    if objects:
        arrays["object_keypoints"] = rng.uniform(0, 640, size=(T, 5, 2))
        arrays["object_scores"] = rng.uniform(0, 1, size=(T, 5))
        arrays["object_category"] = np.array("box")
    return arrays


def _set(key, value):
    return lambda a: {**a, key: value(a) if callable(value) else value}


def _drop(key):
    return lambda a: {k: v for k, v in a.items() if k != key}


def _edit(key, fn):
    """Copy of a[key] changed in place by fn."""
    def mutate(a):
        v = np.array(a[key])
        fn(v)
        return {**a, key: v}
    return mutate


def _scale_rotation(v):
    v[2, :3, :3] *= 1.1


def _reflect(v):
    v[1, :3, 0] *= -1


def _nan_keypoint(v):
    v[3, 5, 0] = np.nan


# (case id, mutation of good_arrays(objects=True), key the error must name)
ARRAY_CASES = [
    ("missing_keypoints", _drop("keypoints"), "keypoints"),
    ("missing_intrinsics", _drop("intrinsics"), "intrinsics"),
    ("missing_cam_c2w", _drop("cam_c2w"), "cam_c2w"),
    ("missing_image_size", _drop("image_size"), "image_size"),
    ("missing_fps", _drop("fps"), "fps"),
    ("keypoints_18_joints", _set("keypoints", np.zeros((T, 18, 2))), "keypoints"),
    ("keypoints_xyz", _set("keypoints", np.zeros((T, 17, 3))), "keypoints"),
    ("keypoints_strings", _set("keypoints", np.full((T, 17, 2), "1.0")), "keypoints"),
    ("zero_frames", _set("keypoints", np.zeros((0, 17, 2))), "keypoints"),
    ("nan_keypoint_positive_score", _edit("keypoints", _nan_keypoint), "keypoints"),
    ("scores_above_one", _edit("scores", lambda v: v.__setitem__((1, 2), 1.5)), "scores"),
    ("scores_negative", _edit("scores", lambda v: v.__setitem__((0, 0), -0.1)), "scores"),
    ("scores_nan", _edit("scores", lambda v: v.__setitem__((4, 4), np.nan)), "scores"),
    ("scores_frames_mismatch", _set("scores", np.ones((T - 1, 17))), "scores"),
    ("scores_bool", _set("scores", np.ones((T, 17), bool)), "scores"),
    ("cam_c2w_3x4", _set("cam_c2w", lambda a: a["cam_c2w"][:, :3]), "cam_c2w"),
    ("cam_c2w_frames_mismatch", _set("cam_c2w", lambda a: a["cam_c2w"][:-1]), "cam_c2w"),
    ("cam_c2w_nan", _edit("cam_c2w", lambda v: v.__setitem__((2, 0, 3), np.nan)), "cam_c2w"),
    ("cam_c2w_inf", _edit("cam_c2w", lambda v: v.__setitem__((0, 1, 1), np.inf)), "cam_c2w"),
    ("cam_c2w_not_orthonormal", _edit("cam_c2w", _scale_rotation), "cam_c2w"),
    ("cam_c2w_reflection", _edit("cam_c2w", _reflect), "cam_c2w"),
    ("cam_c2w_last_row", _edit("cam_c2w", lambda v: v.__setitem__((3, 3, 0), 0.5)), "cam_c2w"),
    ("intrinsics_negative_focal",
     _edit("intrinsics", lambda v: v.__setitem__((1, 1), -810.0)), "intrinsics"),
    ("intrinsics_zero_focal", _edit("intrinsics", lambda v: v.__setitem__((0, 0), 0.0)),
     "intrinsics"),
    ("intrinsics_nan", _edit("intrinsics", lambda v: v.__setitem__((0, 2), np.nan)), "intrinsics"),
    ("intrinsics_last_row", _edit("intrinsics", lambda v: v.__setitem__((2, 2), 2.0)),
     "intrinsics"),
    ("intrinsics_frames_mismatch",
     _set("intrinsics", lambda a: np.tile(a["intrinsics"], (T + 1, 1, 1))), "intrinsics"),
    ("intrinsics_4x4", _set("intrinsics", np.eye(4)), "intrinsics"),
    ("intrinsics_strings", _set("intrinsics", np.full((3, 3), "a")), "intrinsics"),
    ("image_size_float", _set("image_size", np.array([640.0, 480.0])), "image_size"),
    ("image_size_negative", _set("image_size", np.array([640, -480])), "image_size"),
    ("image_size_three", _set("image_size", np.array([640, 480, 3])), "image_size"),
    ("fps_zero", _set("fps", np.array(0.0)), "fps"),
    ("fps_nan", _set("fps", np.array(np.nan)), "fps"),
    ("fps_string", _set("fps", np.array("30")), "fps"),
    ("fps_vector", _set("fps", np.array([30.0, 30.0])), "fps"),
    ("object_keypoints_no_category", _drop("object_category"), "object_category"),
    ("object_category_alone", lambda a: {k: v for k, v in a.items() if k not in (
        "object_keypoints", "object_scores")}, "object_category"),
    ("object_scores_wrong_m", _set("object_scores", np.ones((T, 4))), "object_scores"),
    ("object_keypoints_frames_mismatch", _set("object_keypoints", np.zeros((T + 2, 5, 2))),
     "object_keypoints"),
    ("object_category_number", _set("object_category", np.array(3)), "object_category"),
    ("pickled_keypoints", _set("keypoints", lambda a: np.array(list(a["keypoints"]) + [None],
                                                               dtype=object)), "keypoints"),
    ("pickled_extra_key", _set("meta", np.array([{"fps": 30}], dtype=object)), "meta"),
]


@pytest.mark.parametrize("mutate,key", [c[1:] for c in ARRAY_CASES],
                         ids=[c[0] for c in ARRAY_CASES])
def test_malformed_arrays_raise_one_line_error_naming_file_and_key(tmp_path, mutate, key):
    path = tmp_path / "clip7.npz"
    np.savez(path, **mutate(good_arrays(objects=True)))  # np.savez pickles object arrays
    with pytest.raises(ArchiveError) as err:
        read_clip(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert "clip7.npz" in msg and f"key '{key}'" in msg, msg


def test_shape_error_message_matches_spec_example(tmp_path):
    a = good_arrays(T=120)
    a["cam_c2w"] = a["cam_c2w"][:, :3]
    np.savez(tmp_path / "clip7.npz", **a)
    with pytest.raises(ArchiveError) as err:
        read_clip(tmp_path / "clip7.npz")
    assert str(err.value) == (f"{tmp_path / 'clip7.npz'}: key 'cam_c2w': expected shape "
                              "(T, 4, 4) with T=120, got (120, 3, 4)")


def _valid_bytes(tmp_path):
    np.savez(tmp_path / "src.npz", **good_arrays())
    return (tmp_path / "src.npz").read_bytes()


def _npy_member_offset(data, key):
    """Offset of the array data of member `key` in an uncompressed npz (np.savez)."""
    import io
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(key + ".npy")
    local_header = 30 + len(info.filename.encode()) + len(info.extra)
    return info.header_offset + local_header + 128  # .npy header padded to 128 bytes


# (case id, bytes from the bytes of a valid file, key the error must name or None for the whole
# file, text the message must contain)
FILE_CASES = [
    ("truncated_zip", lambda b: b[: len(b) // 2], None, "truncated or corrupt"),
    ("empty_file", lambda b: b"", None, "truncated or corrupt"),
    ("text_file", lambda b: b"keypoints,scores\n1,2\n", None, "not a zip file"),
    ("corrupt_member_data",
     lambda b: b[:(o := _npy_member_offset(b, "keypoints"))] + bytes(64) + b[o + 64:],
     "keypoints", "corrupt member"),
]


@pytest.mark.parametrize("make,key,text", [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_unreadable_files_raise_one_line_error(tmp_path, make, key, text):
    path = tmp_path / "clip3.npz"
    path.write_bytes(make(_valid_bytes(tmp_path)))
    with pytest.raises(ArchiveError) as err:
        read_clip(path)
    msg = str(err.value)
    assert "\n" not in msg and "clip3.npz" in msg and text in msg, msg
    assert key is None or f"key '{key}'" in msg, msg


def test_single_npy_and_missing_file_are_refused(tmp_path):
    with open(tmp_path / "single.npz", "wb") as f:
        np.save(f, np.zeros((T, 17, 2)))
    with pytest.raises(ArchiveError, match="single.npz: holds a single .npy array"):
        read_clip(tmp_path / "single.npz")
    with pytest.raises(ArchiveError, match="absent.npz: no such file"):
        read_clip(tmp_path / "absent.npz")


def test_round_trip_write_read(tmp_path):
    a = good_arrays(seed=3, objects=True)
    a["scores"][2, 4] = 0.0
    a["keypoints"][2, 4] = np.nan  # allowed: score 0 means missing
    a["object_scores"][1, 0] = 0.0
    a["object_keypoints"][1, 0] = np.inf
    clip = clip_from_arrays("walk_01", a)
    write_clip(tmp_path / "walk_01.npz", clip)
    back = read_clip(tmp_path / "walk_01.npz")

    assert back.clip_id == "walk_01" and back.object_category == "box"
    assert back.fps == 30.0 and back.image_size.tolist() == [640, 480]
    expected_kp = np.where(a["scores"][..., None] > 0, a["keypoints"], 0)
    np.testing.assert_array_equal(back.keypoints, expected_kp.astype(np.float32))
    np.testing.assert_array_equal(back.scores, a["scores"].astype(np.float32))
    np.testing.assert_array_equal(back.cam_c2w, a["cam_c2w"].astype(np.float32))
    assert back.intrinsics.shape == (T, 3, 3)  # (3, 3) is broadcast over frames
    np.testing.assert_array_equal(back.intrinsics, np.broadcast_to(
        a["intrinsics"].astype(np.float32), (T, 3, 3)))
    assert back.object_keypoints[1, 0].tolist() == [0.0, 0.0]
    for field in ("keypoints", "scores", "intrinsics", "cam_c2w", "object_keypoints",
                  "object_scores"):
        assert getattr(back, field).dtype == np.float32
    # The written file is plain numpy: no pickle needed, no member holds objects.
    with np.load(tmp_path / "walk_01.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_defaults_and_optional_keys():
    a = good_arrays()
    del a["scores"]
    a["fps"] = np.array(25)  # an integer frame rate is a frame rate
    clip = clip_from_arrays("c", a)
    assert (clip.scores == 1).all() and clip.fps == 25.0
    assert clip.object_keypoints is None and clip.object_category is None
    # (T, 3, 3) intrinsics are kept per frame.
    a["intrinsics"] = np.tile(a["intrinsics"], (T, 1, 1)) * np.r_[1:T + 1][:, None, None]
    a["intrinsics"][:, 2] = [0, 0, 1]
    np.testing.assert_allclose(clip_from_arrays("c", a).intrinsics[:, 0, 0], 800 * np.r_[1:T + 1])


def test_rotation_tolerance_accepts_slam_noise_and_rejects_skew():
    a = good_arrays()
    rng = np.random.default_rng(1)
    a["cam_c2w"][:, :3, :3] += rng.normal(scale=1e-5, size=(T, 3, 3))  # float32 SLAM output
    clip_from_arrays("c", a)
    a["cam_c2w"][4, :3, :3] = a["cam_c2w"][4, :3, :3] @ np.array(
        [[1, 0.01, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ArchiveError, match="frame 4 is not orthonormal"):
        clip_from_arrays("c", a)


def test_read_archive_partitions_good_and_bad(tmp_path):
    for i, clip_id in enumerate(["b_good", "a_good"]):
        write_clip(tmp_path / f"{clip_id}.npz", clip_from_arrays(clip_id, good_arrays(seed=i)))
    bad = good_arrays()
    bad["scores"] = bad["scores"] * 3
    np.savez(tmp_path / "c_bad.npz", **bad)
    (tmp_path / "0_truncated.npz").write_bytes((tmp_path / "a_good.npz").read_bytes()[:100])
    (tmp_path / "notes.txt").write_text("not a clip")
    (tmp_path / ".a_good.npz.x1y2.tmp").write_bytes(b"partial write of another process")

    clips, errors = read_archive(tmp_path)
    assert [c.clip_id for c in clips] == ["a_good", "b_good"]
    assert [p.name for p, _ in errors] == ["0_truncated.npz", "c_bad.npz"]
    assert "key 'scores'" in errors[1][1] and "c_bad.npz" in errors[1][1]
    again, errors_again = read_archive(tmp_path)
    assert [c.clip_id for c in again] == ["a_good", "b_good"] and errors_again == errors
    with pytest.raises(ArchiveError, match="not an archive folder"):
        read_archive(tmp_path / "missing")


def test_write_clip_refuses_invalid_clip_and_wrong_name(tmp_path):
    clip = clip_from_arrays("c", good_arrays())
    with pytest.raises(ArchiveError, match="file name must be"):
        write_clip(tmp_path / "other.npz", clip)
    broken = clip_from_arrays("c", good_arrays())
    broken.cam_c2w[0, 0, 0] = np.nan  # the dataclass is frozen, its arrays are not
    with pytest.raises(ArchiveError, match="key 'cam_c2w'"):
        write_clip(tmp_path / "c.npz", broken)
    assert os.listdir(tmp_path) == []


def _output(T=5, objects=False):
    rng = np.random.default_rng(0)
    out = {"keypoints3d": rng.normal(size=(T, 17, 3)), "body_model": "smpl",
           "global_orient": rng.normal(size=(T, 3)), "body_pose": rng.normal(size=(T, 69)),
           "betas": np.zeros(10), "transl": rng.normal(size=(T, 3))}
    if objects:
        out.update(object_rot6d=rng.normal(size=(T, 6)), object_transl=np.zeros((T, 3)),
                   object_scale=np.array(1.3))
    return out


def test_write_output_round_trip(tmp_path):
    out = _output(objects=True)
    write_output(tmp_path / "c.npz", out)
    back = validate_output(tmp_path / "c.npz")
    assert str(back["body_model"]) == "smpl"
    np.testing.assert_array_equal(back["keypoints3d"], out["keypoints3d"])
    np.testing.assert_array_equal(back["body_pose"], out["body_pose"])
    assert os.listdir(tmp_path) == ["c.npz"]


@pytest.mark.parametrize("mutate,key", [
    (lambda o: o.pop("keypoints3d"), "keypoints3d"),
    (lambda o: o.pop("body_model"), "body_model"),
    (lambda o: o.update(keypoints3d=np.zeros((5, 17, 2))), "keypoints3d"),
    (lambda o: o["keypoints3d"].__setitem__((0, 0, 0), np.nan), "keypoints3d"),
    (lambda o: o["body_pose"].__setitem__((1, 1), np.inf), "body_pose"),
    (lambda o: o.update(object_rot6d=np.zeros((5, 6))), "object_transl"),
    (lambda o: o.update(object_rot6d=np.zeros((5, 6)), object_transl=np.zeros((5, 3)),
                        object_scale=np.array(-1.0)), "object_scale"),
    (lambda o: o.update(body_model=np.array(1)), "body_model"),
], ids=["no_keypoints3d", "no_body_model", "keypoints3d_2d", "keypoints3d_nan", "body_pose_inf",
        "partial_object_pose", "negative_object_scale", "body_model_number"])
def test_invalid_output_is_not_written_and_fails_validation(tmp_path, mutate, key):
    out = _output()
    mutate(out)
    with pytest.raises(ArchiveError, match=f"c.npz: key '{key}'"):
        write_output(tmp_path / "c.npz", out)
    assert os.listdir(tmp_path) == []
    np.savez(tmp_path / "c.npz", **out)  # written by someone else: validation still refuses it
    with pytest.raises(ArchiveError, match=f"c.npz: key '{key}'"):
        validate_output(tmp_path / "c.npz")


def test_validate_output_missing_or_truncated(tmp_path):
    with pytest.raises(ArchiveError, match="no such file"):
        validate_output(tmp_path / "c.npz")
    write_output(tmp_path / "c.npz", _output())
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "c.npz").write_bytes(data[: len(data) - 40])
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        validate_output(tmp_path / "c.npz")


@pytest.mark.parametrize("existing", [False, True])
def test_atomic_writer_leaves_no_partial_file(tmp_path, monkeypatch, existing):
    if existing:
        write_output(tmp_path / "c.npz", _output(T=3))
    before = (tmp_path / "c.npz").read_bytes() if existing else None

    def savez_disk_full(file, **arrays):
        file.write(b"PK\x03\x04 half of a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_output(tmp_path / "c.npz", _output())
    with pytest.raises(OSError, match="No space left"):
        write_clip(tmp_path / "d.npz", clip_from_arrays("d", good_arrays()))
    monkeypatch.undo()

    assert os.listdir(tmp_path) == (["c.npz"] if existing else [])  # no temp files either
    if existing:
        assert (tmp_path / "c.npz").read_bytes() == before
        validate_output(tmp_path / "c.npz")
