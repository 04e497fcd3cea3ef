"""The held-out benchmarks (anylift_jax.data.heldout): archives that read back, truth that matches them."""
import numpy as np

from anylift_jax.data import heldout, mocap
from anylift_jax.geometry import cameras
from anylift_jax.geometry.rotations import rot6d_to_matrix
from anylift_jax.hoi import load_category
from anylift_jax.hoi.pose import object_pose_from_keypoints
from anylift_jax.io import archive


def _median_relative_error(points, pix, scores, clip):
    """Median distance between projected truth and keypoints, in units of the projected box size."""
    proj, _ = cameras.project(points, clip.intrinsics, cameras.invert_rigid(clip.cam_c2w))
    proj = np.asarray(proj)
    size = (proj.max(1) - proj.min(1)).max(-1)[:, None]
    return float(np.median((np.linalg.norm(proj - pix, axis=-1) / size)[scores > 0]))


def test_human_benchmark_truth_projects_onto_its_noisy_keypoints(tmp_path):
    archive_dir, truth_dir = heldout.build(tmp_path, clips=("amp_humanoid_hop",), kinds=("orbit",))
    clips, errors = archive.read_archive(archive_dir)
    assert not errors and [c.clip_id for c in clips] == ["amp_humanoid_hop__orbit"]
    truth = np.load(truth_dir / "amp_humanoid_hop__orbit.npz")["keypoints3d"]
    np.testing.assert_array_equal(truth, mocap.load_shipped("amp_humanoid_hop"))
    # Detector noise: σ = 2 % of the box per axis, so the median distance is about 1.2σ (Rayleigh);
    # the median ignores the rare limb swaps.
    c = clips[0]
    assert 0.015 < _median_relative_error(truth, c.keypoints, c.scores, c) < 0.035


def test_hoi_benchmark_object_truth_matches_its_keypoints(tmp_path):
    archive_dir, truth_dir = heldout.build_hoi(tmp_path, "box", clips=("131_02",), kinds=("track",))
    clips, errors = archive.read_archive(archive_dir)
    assert not errors and {c.clip_id for c in clips} == {"131_02__carry_box__track", "131_02__push_box__track"}
    cat = load_category("box")
    for c in clips:
        t = np.load(truth_dir / f"{c.clip_id}.npz")
        assert c.object_category == "box" and c.object_keypoints.shape == (c.num_frames, cat.num_keypoints, 2)
        assert str(t["object_category"]) == "box" and t["contact"].any()
        # The truth pose places the canonical keypoints where the archive's object keypoints are seen.
        R = np.asarray(rot6d_to_matrix(t["object_rot6d"]))
        q = t["object_scale"] * np.einsum("tij,mj->tmi", R, cat.keypoints) + t["object_transl"][:, None]
        seen = c.object_scores > 0
        assert seen.mean() > 0.3
        assert _median_relative_error(q, c.object_keypoints, c.object_scores, c) < 0.035
        # and the pose is what Umeyama recovers from those 3D keypoints (consistent conventions;
        # the recovery smooths over time, hence millimetres)
        back = object_pose_from_keypoints(q, np.ones(q.shape[:2], np.float32), "box")
        np.testing.assert_allclose(np.asarray(back["object_transl"]), t["object_transl"], atol=1e-2)
