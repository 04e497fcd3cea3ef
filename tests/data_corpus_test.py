"""The motion corpus (anylift_jax.data.corpus) and its readers (mocap.read_deepmimic, the rig
table, mocap.check_motion): closed-form forward kinematics, the checks that reject a bad clip,
and the shipped manifest's splits."""
import dataclasses
import json

import numpy as np
import pytest

from anylift_jax import skeleton
from anylift_jax.data import corpus, heldout, mocap


def _deepmimic_rows(root_pos, knee_angle, elbow_angle=0.0, root_quat=(1.0, 0.0, 0.0, 0.0)):
    ident = [1.0, 0.0, 0.0, 0.0]
    row = [1 / 30, *root_pos, *root_quat, *ident, *ident]  # dt, root, chest, neck
    for side in range(2):  # right then left: hip, knee, ankle, shoulder, elbow
        row += ident + [knee_angle] + ident + ident + [elbow_angle]
    return row


def _write_deepmimic(path, rows):
    path.write_text(json.dumps({"Loop": "none", "Frames": rows}))
    return path


def test_deepmimic_forward_kinematics_closed_form(tmp_path):
    """Standing straight (all rotations identity) the humanoid3d joints sit at the sums of the
    skeleton's offsets, Y up turned to Z up; a knee bent by -90° about its z axis puts the ankle
    one shin length behind the knee (the humanoid faces +X, which becomes +X in our Z-up world)."""
    path = _write_deepmimic(tmp_path / "stand.txt", [_deepmimic_rows((0.0, 0.9, 0.0), 0.0)] * 3)
    bvh = mocap.read_deepmimic(path)
    pos, _ = mocap.forward_kinematics(bvh, 1.0)
    knee = bvh.index("right_knee")
    # Y up -> Z up: (x, y, z) -> (x, -z, y). Right hip at +z (file) -> -y (ours).
    np.testing.assert_allclose(pos[0, knee], [0.0, -0.084887, 0.9 - 0.421546], atol=1e-9)
    np.testing.assert_allclose(pos[0, bvh.index("right_ankle")], [0.0, -0.084887, 0.9 - 0.421546 - 0.409870], atol=1e-9)

    bent = _write_deepmimic(tmp_path / "bent.txt", [_deepmimic_rows((0.0, 0.9, 0.0), -np.pi / 2)] * 3)
    pos, _ = mocap.forward_kinematics(mocap.read_deepmimic(bent), 1.0)
    shin = pos[0, bvh.index("right_ankle")] - pos[0, knee]
    np.testing.assert_allclose(shin, [-0.409870, 0.0, 0.0], atol=1e-9)  # behind the knee: a real knee bend


def test_deepmimic_clip_converts_to_a_plausible_coco_body(tmp_path):
    """A walk-like humanoid3d clip (knees bending, the root moving forward) converts at 30 fps
    with the floor under the soles and passes every check."""
    rows = [_deepmimic_rows((0.03 * t, 0.86, 0.0), -0.6 * (1 + np.sin(t / 4)) / 2, 0.3) for t in range(60)]
    kp = mocap.load_deepmimic(_write_deepmimic(tmp_path / "walk.txt", rows))
    assert kp.shape == (60, 17, 3)
    mocap.check_motion(kp, "walk.txt")
    np.testing.assert_allclose(skeleton.mid_hip(kp[0])[:2], 0.0, atol=1e-6)
    assert 0.03 < kp[:, list(skeleton.ANKLES), 2].min() < 0.07  # ankle 5 cm above the sole
    # The nose is in front of the head, along +x where the humanoid faces.
    assert (kp[:, 0, 0] - kp[:, 3:5, 0].mean(1) > 0.05).all()


def test_deepmimic_errors_name_the_file_and_key(tmp_path):
    bad = _write_deepmimic(tmp_path / "short.txt", [[0.1] * 40, [0.1] * 40])
    with pytest.raises(ValueError, match=r"short\.txt: key 'Frames': expected rows of 44 values"):
        mocap.load_deepmimic(bad)
    (tmp_path / "junk.txt").write_text("not json")
    with pytest.raises(ValueError, match=r"junk\.txt: key 'Frames'"):
        mocap.read_deepmimic(tmp_path / "junk.txt")


def _shipped():
    return mocap.load_shipped("131_01")


def test_check_motion_accepts_real_mocap():
    mocap.check_motion(_shipped(), "131_01")


@pytest.mark.parametrize("spoil,message", [
    (lambda k: mocap.mirror(k)[:, skeleton.FLIP_PERM], "nose points backwards"),  # a reflection, labels kept
    (lambda k: k * np.array([1.0, 1.0, -1.0], np.float32), "head never rises"),  # upside down
    (lambda k: np.concatenate([k[:50], k[50:] + np.float32([1.0, 0, 0])]), r"jumps 1\.0\d m between frames 49 and 50"),
    (lambda k: np.where((np.arange(len(k)) % 2 == 1)[:, None, None] & (np.arange(17) >= 15)[None, :, None],
                        k + np.float32([0.0, 0.0, 0.05]), k), "limb lengths vary"),  # shins stretch every other frame
])
def test_check_motion_rejects_a_bad_clip_with_one_line_naming_the_file(spoil, message):
    with pytest.raises(ValueError, match=message) as e:
        mocap.check_motion(spoil(_shipped()), "some/clip.bvh")
    assert str(e.value).startswith("some/clip.bvh: ") and "\n" not in str(e.value)


def test_check_motion_rejects_a_backwards_face():
    kp = _shipped().copy()
    ears = kp[:, 3:5].mean(1, keepdims=True)
    kp[:, :3] = 2 * ears - kp[:, :3]  # nose and eyes behind the head
    with pytest.raises(ValueError, match="nose points backwards"):
        mocap.check_motion(kp, "x")


def test_derived_head_axes_match_the_hand_set_cmu_ones():
    """A rig row without head_axes derives them from the rest pose; for the CMU rig that gives
    back the hand-set axes, and the conversion of a shipped BVH within a millimetre."""
    bvh = mocap.read_bvh(mocap.ASSETS / "131_02.bvh")
    derived = mocap._derived_head_axes(bvh, mocap.CMU_RIG, None)
    np.testing.assert_allclose(derived, mocap.CMU_RIG.head_axes, atol=0.05)
    rig = dataclasses.replace(mocap.CMU_RIG, head_axes=None)
    ours = mocap.bvh_to_coco(mocap.resample(bvh, 30.0), rig)
    assert np.abs(ours - mocap.load_shipped("131_02")).max() < 0.01


def test_bvh_source_fps_and_dropped_frames(tmp_path):
    """A header that claims 120 fps for a 60 fps file (the salsa files) is overridden by
    source_fps: the clip lasts twice as long; drop_frames cuts the prepended pose."""
    text = (mocap.ASSETS / "131_01.bvh").read_text()
    path = tmp_path / "c.bvh"
    path.write_text(text)
    full = mocap.load_bvh(path)
    slow = mocap.load_bvh(path, source_fps=60.0)
    assert abs(len(slow) - 2 * len(full)) <= 2
    assert len(mocap.load_bvh(path, drop_frames=4)) == len(mocap.load_bvh(path)) - 1  # 4 frames at 120 = 1 at 30


def test_manifest_splits_are_disjoint_by_subject_and_cover_every_category():
    rows = corpus.manifest()
    assert len(rows) >= 180
    for split in ("train", "val", "test"):
        cats = {r["category"] for r in rows.values() if r["split"] == split}
        assert cats == set(corpus.CATEGORIES), (split, cats)
    # A subject (or, for the single-subject categories, a trial group) lives in one split only
    # (the old six-clip benchmark's two clips share subjects with train by construction).
    groups = {}
    for r in (r for r in rows.values() if r["split"] != "heldout6"):
        key = r["trial"] if r["subject"] in ("cmu05", "cmu06", "salsa_dancerA", "salsa_dancerB", "indian_dancer",
                                            "martial_artist") else r["subject"]
        groups.setdefault(key, set()).add(r["split"])
    assert all(len(s) == 1 for s in groups.values()), {k: s for k, s in groups.items() if len(s) > 1}
    # salsa partners (files k and k + 15) share a split
    for k in range(1, 16):
        a, b = rows.get(f"daz_salsa_{k:02d}"), rows.get(f"daz_salsa_{k + 15:02d}")
        if a and b:
            assert a["split"] == b["split"]
    assert set(corpus.clips("heldout6")) == set(mocap.HELDOUT)


def test_corpus_clips_load_and_pass_the_checks():
    for split in ("val", "test"):
        for name in corpus.clips(split)[::7]:
            kp = corpus.load(name)
            assert kp.shape[1:] == (17, 3) and len(kp) == int(corpus.manifest()[name]["frames"])
            mocap.check_motion(kp, name)


def test_benchmark_segments_cover_each_clip_once():
    for T in (30, 100, 180, 200, 224, 225, 1000):
        segs = heldout.segments(T)
        assert segs[0].start == 0 and segs[-1].stop == T
        assert all(a.stop == b.start for a, b in zip(segs, segs[1:]))
        assert all(s.stop - s.start <= heldout.SEGMENT + heldout.MIN_SEGMENT for s in segs)


def test_split_benchmark_truth_names_the_category(tmp_path):
    archive_dir, truth_dir = heldout.build_split(tmp_path, "val")
    files = sorted(truth_dir.glob("*.npz"))
    assert len(files) == len(list(archive_dir.glob("*.npz"))) >= 100
    with np.load(files[0]) as f:
        assert str(f["category"]) == corpus.category(str(f["clip"]))
    kinds = {p.stem.rsplit("__", 1)[1] for p in files}
    assert kinds == set(heldout.SPLIT_KINDS)


def test_import_converts_a_source_folder_and_reports_a_bad_clip(tmp_path):
    """The import of a one-source manifest: a good humanoid3d clip is written with its manifest
    row; one whose knees bend the wrong way (a sign error of a rig) is left out with one line
    naming the file."""
    src = tmp_path / "src"
    (src / "dm").mkdir(parents=True)
    rows = [_deepmimic_rows((0.03 * t, 0.86, 0.0), -0.6 * (1 + np.sin(t / 4)) / 2, 0.3) for t in range(60)]
    _write_deepmimic(src / "dm" / "good.txt", rows)
    mirrored = [_deepmimic_rows((0.03 * t, 0.86, 0.0), 0.6 * (1 + np.sin(t / 4)) / 2, 0.3) for t in range(60)]
    _write_deepmimic(src / "dm" / "mirrored.txt", mirrored)
    spec = {"sources": {"dm": {"format": "deepmimic", "rig": "humanoid3d", "repository": "test", "licence": "CC0"}},
            "clips": {n: {"source": "dm", "path": f"dm/{n}.txt", "subject": "s", "trial": n, "category": "locomotion",
                          "split": "train"} for n in ("good", "mirrored")}}
    (tmp_path / "import.json").write_text(json.dumps(spec))
    failed = corpus.import_corpus(src, tmp_path / "out", tmp_path / "import.json")
    assert list(failed) == ["mirrored"] and "mirrored.txt" in failed["mirrored"]
    with np.load(tmp_path / "out" / "good.npz") as f:
        assert f["keypoints3d"].shape == (60, 17, 3) and float(f["fps"]) == 30.0
    assert (tmp_path / "out" / "manifest.csv").read_text().count("\n") == 2
