"""The evaluate command on small folders built from shipped mocap."""
import json
from importlib import resources

import numpy as np
import pytest

from anylift_jax import baselines, evaluate
from anylift_jax.geometry import cameras
from anylift_jax.hoi.metrics import OBJECT_METRICS
from anylift_jax.io import archive

T = 110  # two W-MPJPE segments: 100 + 10 frames


def _mocap(name):
    with np.load(resources.files("anylift_jax") / f"assets/mocap/{name}.npz") as f:
        return np.asarray(f["keypoints3d"][:T], np.float32)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """truth: walk, hop, run(41 frames); pred 'good' (small noise) and 'bad' (large noise and a
    drift) for walk and hop, a prediction of the wrong length for run, one without truth."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    truth, good, bad, inputs = (root / n for n in ("truth", "good", "bad", "input"))
    for d in (truth, good, bad, inputs):
        d.mkdir()
    for name in ("131_02", "amp_humanoid_hop"):
        kp = _mocap(name)
        np.savez(truth / f"{name}.npz", keypoints3d=kp, fps=np.float64(30))
        np.savez(good / f"{name}.npz", keypoints3d=kp + rng.normal(0, 0.01, kp.shape),
                 body_model="anny")
        drift = np.linspace(0, 1, T)[:, None, None] * np.array([1.0, 0.5, 0.0])
        np.savez(bad / f"{name}.npz", keypoints3d=kp + drift + rng.normal(0, 0.05, kp.shape))
        # The input archive: the truth seen by a camera circling the subject.
        eye = np.stack([3 * np.cos(np.linspace(0, 1, T)), 3 * np.sin(np.linspace(0, 1, T)),
                        np.full(T, 1.5)], -1)
        c2w = np.asarray(cameras.invert_rigid(cameras.look_at(eye, kp.mean(1))))
        K = np.asarray(cameras.intrinsics(1000.0, 1280, 720))
        pix, _ = cameras.project(kp, K, np.asarray(cameras.invert_rigid(c2w)))
        clip = archive.Clip(name, np.asarray(pix), np.ones((T, 17), np.float32),
                            np.tile(K, (T, 1, 1)), c2w, np.array([1280, 720]), 30.0)
        archive.write_clip(inputs / f"{name}.npz", clip)
    run = _mocap("amp_humanoid_run")
    np.savez(truth / "amp_humanoid_run.npz", keypoints3d=run, fps=np.float64(30))
    np.savez(good / "amp_humanoid_run.npz", keypoints3d=run[:-1])
    np.savez(good / "stray.npz", keypoints3d=run)
    return root


def test_perfect_prediction_scores_zero():
    kp = _mocap("131_02")
    m = evaluate.evaluate_arrays(kp, kp)
    for key in ("mpjpe", "pa_mpjpe", "pa_mpjpe_seq", "w_mpjpe", "wa_mpjpe", "rte"):
        assert m[key] < 0.5, key
    # The truth's own ankles move a little while in contact, by definition less than 1 cm/frame.
    assert 0 < m["foot_sliding"] < 10.0
    assert m["jitter"] == m["jitter_truth"] > 0
    assert set(m) == set(evaluate.METRICS) - {"reproj_2d"} - set(OBJECT_METRICS)


def test_methods_table_and_problems(folders):
    res = evaluate.evaluate_methods({"good": folders / "good", "bad": folders / "bad"},
                                    folders / "truth", folders / "input")
    good, bad = res["good"], res["bad"]
    assert sorted(good["clips"]) == ["131_02", "amp_humanoid_hop"]
    problems = "\n".join(good["problems"])
    assert "amp_humanoid_run.npz: 40 frames" in problems and "has 41" in problems
    assert "stray.npz: no ground truth" in problems
    assert "no prediction 'amp_humanoid_run.npz'" in "\n".join(bad["problems"])
    for key in ("mpjpe", "pa_mpjpe", "w_mpjpe", "wa_mpjpe", "rte", "jitter", "reproj_2d"):
        assert good["mean"][key] < bad["mean"][key], key
    # 1 cm noise per axis: |e| of a 3D normal has mean 2σ√(2/π) ≈ 16 mm; alignment lowers it.
    assert 8.0 < good["mean"]["pa_mpjpe"] < 17.0
    assert good["mean"]["wa_mpjpe"] < bad["mean"]["wa_mpjpe"] < bad["mean"]["w_mpjpe"]
    walk = good["clips"]["131_02"]
    assert good["mean"]["mpjpe"] == pytest.approx(
        (walk["mpjpe"] + good["clips"]["amp_humanoid_hop"]["mpjpe"]) / 2)
    table = evaluate.markdown(res)
    assert "| metric | good | bad |" in table
    assert "| 131_02 | bad |" in table and "WA-MPJPE100 (mm)" in table
    assert f"{walk['wa_mpjpe']:.1f}" in table


def test_cli_writes_json_and_markdown(folders, tmp_path, capsys):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    rc = evaluate.main(["--pred", str(folders / "good"), "--pred", f"naive={folders / 'bad'}",
                        "--truth", str(folders / "truth"), "--json", str(out_json),
                        "--markdown", str(out_md)])
    assert rc == 1  # problems were found
    captured = capsys.readouterr()
    assert "| metric | good | naive |" in captured.out
    assert "problem: good:" in captured.err and "stray.npz" in captured.err
    doc = json.loads(out_json.read_text())
    assert doc["methods"]["naive"]["clips"]["131_02"]["w_mpjpe"] > 0
    assert "reproj_2d" not in doc["methods"]["good"]["mean"]
    assert out_md.read_text() == captured.out


def test_bad_files_are_named(folders, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    np.savez(pred / "131_02.npz", keypoints3d=np.array([object()] * 3, dtype=object))
    np.savez(pred / "amp_humanoid_hop.npz", joints=np.zeros((T, 17, 3)))
    res = evaluate.evaluate_dir(pred, folders / "truth")
    text = "\n".join(res["problems"])
    assert "131_02.npz: key 'keypoints3d': holds a pickled object array" in text
    assert "amp_humanoid_hop.npz: key 'keypoints3d': missing" in text
    assert res["clips"] == {}
    assert evaluate.main(["--pred", str(pred), "--truth", str(folders / "truth")]) == 2
    assert evaluate.main(["--pred", str(tmp_path / "nope"), "--truth", str(folders / "truth")]) == 2


def test_cli_runs_baselines_on_the_input(folders, tmp_path):
    out_json = tmp_path / "r.json"
    rc = evaluate.main(["--pred", f"good={folders / 'good'}", "--truth", str(folders / "truth"),
                        "--input", str(folders / "input"), "--baseline", "backproject",
                        "--baseline-dir", str(tmp_path / "b"), "--json", str(out_json)])
    assert rc == 1  # the 'good' folder's problems, not the baseline's
    doc = json.loads(out_json.read_text())["methods"]["backproject"]
    # the truth clip that has no input clip has no baseline prediction either
    assert len(doc["problems"]) == 1 and "amp_humanoid_run.npz: no prediction" in doc["problems"][0]
    clip = archive.read_clip(folders / "input" / "131_02.npz")
    direct = evaluate.evaluate_arrays(baselines.backproject(clip), _mocap("131_02"))
    assert doc["clips"]["131_02"]["mpjpe"] == pytest.approx(direct["mpjpe"], rel=1e-6)
    assert (tmp_path / "b" / "backproject" / "amp_humanoid_hop.npz").exists()


def test_baseline_needs_the_input(folders, tmp_path):
    with pytest.raises(SystemExit):
        evaluate.main(["--pred", str(folders / "good"), "--truth", str(folders / "truth"),
                       "--baseline", "backproject"])


@pytest.mark.slow
def test_smplify_baseline_beats_backprojection_on_pose(folders, tmp_path):
    """Noise-free 2D through a known camera: the 2D body fit recovers the pose far better than the
    fixed-depth back-projection (PA-MPJPE), as SMPLify does on real benchmarks."""
    for name in baselines.BASELINES:
        baselines.run(name, folders / "input", tmp_path / name)
    res = evaluate.evaluate_methods({n: tmp_path / n for n in baselines.BASELINES}, folders / "truth")
    assert res["smplify"]["mean"]["pa_mpjpe"] < 0.8 * res["backproject"]["mean"]["pa_mpjpe"]


def test_object_pose_metrics_of_hoi_clips(tmp_path):
    """Truth with an object pose: a prediction with the object shifted by 10 cm scores 100 mm
    translation error and 0° rotation error; one without an object pose is a problem."""
    from anylift_jax.hoi import synth  # noqa: PLC0415

    seq = synth.make_sequence(np.random.default_rng(0), _mocap("amp_humanoid_walk"), "carry_box")
    pose = {"object_rot6d": seq.object_rot6d, "object_transl": seq.object_transl, "object_scale": seq.object_scale}
    for d in ("truth", "shifted", "scene_shifted", "human_only"):
        (tmp_path / d).mkdir()
    np.savez(tmp_path / "truth/c.npz", keypoints3d=seq.kp3d, object_category=seq.category, contact=seq.contact, **pose)
    archive.write_output(tmp_path / "shifted/c.npz", {"keypoints3d": seq.kp3d, "body_model": "none", **pose,
                                                      "object_transl": seq.object_transl + [0.1, 0.0, 0.0]})
    # body and object shifted together: a world-trajectory error, the object still right for the person
    archive.write_output(tmp_path / "scene_shifted/c.npz", {"keypoints3d": seq.kp3d + [0.1, 0.0, 0.0], "body_model": "none",
                                                            **pose, "object_transl": seq.object_transl + [0.1, 0.0, 0.0]})
    archive.write_output(tmp_path / "human_only/c.npz", {"keypoints3d": seq.kp3d, "body_model": "none"})
    res = evaluate.evaluate_methods({d: tmp_path / d for d in ("shifted", "scene_shifted", "human_only")},
                                    tmp_path / "truth")
    scene = res["scene_shifted"]["clips"]["c"]
    assert scene["object_transl"] == pytest.approx(100.0, abs=0.01) and scene["object_transl_root"] < 0.01
    row = res["shifted"]["clips"]["c"]
    assert row["object_transl"] == pytest.approx(100.0, abs=0.01)
    assert row["object_transl_root"] == pytest.approx(100.0, abs=0.01)
    assert row["object_rot"] == pytest.approx(0.0, abs=0.05) and row["object_scale"] == pytest.approx(0.0, abs=1e-3)
    assert "Object transl. (mm)" in evaluate.markdown(res)
    assert "object_transl" not in res["human_only"]["clips"]["c"]
    assert "c.npz: key 'object_rot6d': missing (the truth has an object pose)" in res["human_only"]["problems"][0]


def test_means_per_category_of_truth_that_names_one(tmp_path):
    """Truth files with a `category` give per-category means and their mean; each clip counts in
    its own category only."""
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(0)
    kp = (rng.normal(size=(40, 17, 3)) * 0.2 + [0.0, 0.0, 1.0]).astype(np.float32)
    offsets = {"a1": ("dance", 0.01), "a2": ("dance", 0.03), "b1": ("ground", 0.10)}
    for name, (cat, off) in offsets.items():
        np.savez(truth / f"{name}.npz", keypoints3d=kp, fps=np.float64(30), category=np.str_(cat))
        moved = kp.copy()
        moved[:, 0, 0] += off  # the nose off by `off` m: root-relative MPJPE off / 17
        np.savez(pred / f"{name}.npz", keypoints3d=moved)
    r = evaluate.evaluate_dir(pred, truth)
    mm = 1000.0 / 17
    assert r["categories"]["dance"]["mpjpe"] == pytest.approx(0.02 * mm, abs=1e-3)
    assert r["categories"]["ground"]["mpjpe"] == pytest.approx(0.10 * mm, abs=1e-3)
    assert r["mean_of_categories"]["mpjpe"] == pytest.approx(0.06 * mm, abs=1e-3)
    assert r["mean"]["mpjpe"] == pytest.approx(0.14 / 3 * mm, abs=1e-3)
    table = evaluate.category_markdown({"ours": r})
    assert "| dance | ours | 2 |" in table and "| mean | ours | 3 |" in table
