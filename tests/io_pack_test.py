"""Adapters (MMPose/RTMPose JSON, ViTPose npz, MegaSaM npz) and the pack CLI, end to end."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from anylift_jax.io import read_clip
from anylift_jax.io.pack import main

REPO = Path(__file__).resolve().parents[1]
T, W, H = 8, 1280, 720
K_FULL = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])


def person(x0, dx, seed):
    """(T, 17, 2) pixels of a person whose centre moves from x0 by dx per frame."""
    rng = np.random.default_rng(seed)
    body = rng.uniform([-60, -200], [60, 200], size=(17, 2))
    shift = np.stack([x0 + dx * np.arange(T), np.full(T, 360.0)], -1)
    return body[None] + shift[:, None]


def make_scene(seed=0):
    """Target person A (frame-0 mean score 0.9) and a bystander B with higher scores later."""
    rng = np.random.default_rng(seed)
    a, b = person(300, 40, seed), person(1000, -10, seed + 1)
    sa = rng.uniform(0.8, 1.0, size=(T, 17))
    sb = np.full((T, 17), 0.6)
    sb[1:] = 0.97  # after frame 0 the bystander is the more confident detection
    sa[2, 3] = 1.07  # RTMPose SimCC scores can exceed 1
    sa[5, 7] = 0.0
    a[5, 7] = np.nan  # a missing keypoint may be anything
    return a, sa, b, sb


def instance(kp, sc, bbox=True):
    inst = {"keypoints": kp.tolist(), "keypoint_scores": sc.tolist()}
    if bbox:
        lo, hi = np.nanmin(kp, 0), np.nanmax(kp, 0)
        inst["bbox"] = [[*lo.tolist(), *hi.tolist()]]  # MMPose writes a nested list
        inst["bbox_score"] = 0.9
    return inst


def frames(a, sa, b, sb, bbox=True, empty=3):
    """Per-frame instance lists, bystander first on odd frames, no detection in frame `empty`."""
    out = []
    for t in range(T):
        insts = [instance(a[t], sa[t], bbox), instance(b[t], sb[t], bbox)]
        out.append([] if t == empty else insts[::-1] if t % 2 else insts)
    return out


def expected_track(a, sa, empty=3):
    sc = np.clip(sa, 0, 1)
    if empty is not None:
        sc[empty] = 0
    return np.where(sc[..., None] > 0, a, 0).astype(np.float32), sc.astype(np.float32)


def cameras(seed=0, T=T):
    c2w = np.tile(np.eye(4), (T, 1, 1))
    c2w[:, :3, :3] = Rotation.random(T, random_state=seed).as_matrix()
    c2w[:, :3, 3] = np.random.default_rng(seed).normal(size=(T, 3))
    return c2w


def write_megasam(path, c2w, with_images=True, **override):
    """A MegaSaM-like output: frames resized by one factor to ~384x512 pixels and cropped to
    multiples of 8, with `intrinsic` in those pixels (as camera_tracking_scripts/test_demo.py)."""
    s = np.sqrt(384 * 512 / (H * W))
    w1, h1 = int(W * s), int(H * s)
    K = K_FULL.copy()
    K[0] *= w1 / W
    K[1] *= h1 / H
    arrays = {"cam_c2w": c2w.astype(np.float32), "intrinsic": K.astype(np.float32)}
    if with_images:
        arrays["images"] = np.zeros((len(c2w), h1 - h1 % 8, w1 - w1 % 8, 3), np.uint8)
        arrays["depths"] = np.ones((len(c2w), h1 - h1 % 8, w1 - w1 % 8), np.float16)
    else:
        arrays["intrinsic"] = K_FULL.astype(np.float32)
    arrays.update(override)
    np.savez(path, **arrays)
    return w1 - w1 % 8


def test_mmpose_demo_json_and_megasam_to_archive(tmp_path):
    a, sa, b, sb = make_scene()
    data = {"meta_info": {"dataset_name": "coco", "image_size": [W, H]},
            "instance_info": [{"frame_id": t + 1, "instances": insts}  # the demo counts from 1
                              for t, insts in enumerate(frames(a, sa, b, sb))]}
    (tmp_path / "dance.json").write_text(json.dumps(data))
    c2w = cameras()
    crop_w = write_megasam(tmp_path / "dance_sgd_cvd_hr.npz", c2w)

    assert main(["--keypoints", str(tmp_path / "dance.json"),
                 "--cameras", str(tmp_path / "dance_sgd_cvd_hr.npz"),
                 "--out", str(tmp_path / "archive")]) == 0
    clip = read_clip(tmp_path / "archive" / "dance.npz")

    kp, sc = expected_track(a, sa)
    np.testing.assert_array_equal(clip.keypoints, kp)  # person A throughout, not the bystander
    np.testing.assert_array_equal(clip.scores, sc)
    np.testing.assert_array_equal(clip.cam_c2w, c2w.astype(np.float32))
    assert clip.image_size.tolist() == [W, H] and clip.fps == 30.0
    # K back in keypoint pixels; MegaSaM's crop to multiples of 8 bounds the error by 8 px / side.
    np.testing.assert_allclose(clip.intrinsics, np.broadcast_to(K_FULL, (T, 3, 3)),
                               rtol=8 / crop_w)


def test_inferencer_json_without_bbox_and_flags(tmp_path):
    a, sa, b, sb = make_scene(seed=4)
    data = [{"frame_id": t, "instances": insts}  # MMPoseInferencer counts from 0, no metadata
            for t, insts in enumerate(frames(a, sa, b, sb, bbox=False, empty=6))]
    (tmp_path / "kp.json").write_text(json.dumps(data))
    c2w = cameras(seed=2)
    write_megasam(tmp_path / "cam.npz", c2w, with_images=False)
    argv = ["--keypoints", str(tmp_path / "kp.json"), "--cameras", str(tmp_path / "cam.npz"),
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2  # no image size anywhere
    assert not (tmp_path / "out").exists()
    assert main(argv + ["--image-size", str(W), str(H), "--clip-id", "run7", "--fps", "25"]) == 0
    clip = read_clip(tmp_path / "out" / "run7.npz")
    kp, sc = expected_track(a, sa, empty=6)
    np.testing.assert_array_equal(clip.keypoints, kp)
    np.testing.assert_array_equal(clip.scores, sc)
    np.testing.assert_array_equal(clip.intrinsics[3], K_FULL.astype(np.float32))  # no images
    assert clip.fps == 25.0


def test_track_starts_at_first_detection_and_picks_best_mean_score(tmp_path):
    a, sa, b, sb = make_scene()
    sb[0] = 0.99  # now the frame-0 pick is B, and the track must stay on B
    fr = frames(a, sa, b, sb, empty=0)
    fr[1] = [instance(a[1], sa[1]), instance(b[1], np.full(17, 0.99))]
    (tmp_path / "k.json").write_text(json.dumps([{"instances": i} for i in fr]))
    write_megasam(tmp_path / "c.npz", cameras(), with_images=False)
    assert main(["--keypoints", str(tmp_path / "k.json"), "--cameras", str(tmp_path / "c.npz"),
                 "--out", str(tmp_path), "--image-size", str(W), str(H)]) == 0
    clip = read_clip(tmp_path / "k.npz")
    assert (clip.scores[0] == 0).all()  # frame 0 had no detections
    np.testing.assert_allclose(clip.keypoints[1:], b[1:], rtol=1e-6)


def test_vitpose_npz(tmp_path):
    a, sa, _, _ = make_scene()
    np.savez(tmp_path / "vit.npz", keypoints=np.concatenate([a, sa[..., None]], -1))
    write_megasam(tmp_path / "cam.npz", cameras())
    assert main(["--keypoints", str(tmp_path / "vit.npz"), "--cameras", str(tmp_path / "cam.npz"),
                 "--out", str(tmp_path / "arch"), "--image-size", str(W), str(H)]) == 0
    clip = read_clip(tmp_path / "arch" / "vit.npz")
    kp, sc = expected_track(a, sa, empty=None)
    np.testing.assert_array_equal(clip.keypoints, kp)
    np.testing.assert_array_equal(clip.scores, sc)


def _bad_json(edit):
    def make(tmp_path):
        a, sa, b, sb = make_scene()
        data = {"meta_info": {"image_size": [W, H]},
                "instance_info": [{"frame_id": t, "instances": i}
                                  for t, i in enumerate(frames(a, sa, b, sb))]}
        edit(data)
        (tmp_path / "kp.json").write_text(json.dumps(data))
        write_megasam(tmp_path / "cam.npz", cameras())
    return make


def _bad_cameras(**override):
    def make(tmp_path):
        _bad_json(lambda d: None)(tmp_path)
        write_megasam(tmp_path / "cam.npz", cameras(), **override)
    return make


def _skewed():
    c2w = cameras()
    c2w[4, :3, :3] *= 1.2
    return c2w.astype(np.float32)


# (case id, writer of kp.json / cam.npz in tmp_path, texts the one-line error must contain)
CLI_CASES = [
    ("frames_mismatch", _bad_cameras(cam_c2w=cameras(T=T - 1).astype(np.float32)),
     ["kp.json", "key 'keypoints'", "cam.npz", "key 'cam_c2w'"]),
    ("no_intrinsic", lambda p: (_bad_json(lambda d: None)(p),
                                np.savez(p / "cam.npz", cam_c2w=cameras())),
     ["cam.npz", "key 'intrinsic'"]),
    ("skewed_rotation", _bad_cameras(cam_c2w=_skewed()), ["cam.npz", "key 'cam_c2w'"]),
    ("pickled_images", _bad_cameras(images=np.array([None, "frame"], dtype=object)),
     ["cam.npz", "key 'images'", "pickled"]),
    ("images_other_aspect", _bad_cameras(images=np.zeros((T, 512, 512, 3), np.uint8)),
     ["cam.npz", "key 'images'"]),
    ("wholebody_133", _bad_json(lambda d: d["instance_info"][0]["instances"][0].update(
        keypoints=np.zeros((133, 2)).tolist())),
     ["kp.json", "key 'instance_info[0].instances[0].keypoints'", "(17, 2)"]),
    ("no_scores", _bad_json(lambda d: d["instance_info"][2]["instances"][1].pop(
        "keypoint_scores")), ["kp.json", "key 'instance_info[2].instances[1].keypoint_scores'"]),
    ("nan_scored_keypoint", _bad_json(lambda d: d["instance_info"][1]["instances"][0][
        "keypoints"][4].__setitem__(0, float("nan"))),
     ["kp.json", "key 'instance_info[1].instances[0].keypoints'"]),
    ("frame_gap", _bad_json(lambda d: d["instance_info"][4].update(frame_id=9)),
     ["kp.json", "key 'instance_info[4].frame_id'"]),
    ("nobody", _bad_json(lambda d: [f.update(instances=[]) for f in d["instance_info"]]),
     ["kp.json", "no person detected"]),
    ("bad_meta_size", _bad_json(lambda d: d["meta_info"].update(image_size=[W, -H])),
     ["kp.json", "key 'meta_info.image_size'"]),
    ("truncated_json", lambda p: (_bad_json(lambda d: None)(p), (p / "kp.json").write_text(
        (p / "kp.json").read_text()[:500])), ["kp.json", "not a readable JSON"]),
]


@pytest.mark.parametrize("make,texts", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, make, texts):
    make(tmp_path)
    code = main(["--keypoints", str(tmp_path / "kp.json"), "--cameras", str(tmp_path / "cam.npz"),
                 "--out", str(tmp_path / "archive")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for text in texts:
        assert text in err, err
    assert not (tmp_path / "archive").exists()


def test_cli_as_module_help_and_failure(tmp_path):
    run = [sys.executable, "-m", "anylift_jax.io.pack"]
    help_ = subprocess.run(run + ["--help"], cwd=REPO, capture_output=True, text=True)
    assert help_.returncode == 0
    for flag in ("--keypoints", "--cameras", "--out", "--clip-id", "--fps", "--image-size"):
        assert flag in help_.stdout
    bad = subprocess.run(run + ["--keypoints", str(tmp_path / "none.json"), "--cameras",
                                str(tmp_path / "c.npz"), "--out", str(tmp_path / "a")],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == f"error: {tmp_path / 'none.json'}: no such file\n"
