"""Synthetic HOI sequences, their rendering and the end-to-end object path
(anylift_jax.hoi.synth -> triangulation -> anylift_jax.hoi.pose)."""
import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from anylift_jax.data import cameras, mocap, render2d
from anylift_jax.geometry.triangulate import triangulate
from anylift_jax.hoi import metrics, objects, pose, synth
from anylift_jax.io import archive

CLIP = "amp_humanoid_walk"  # 77 frames: keeps the tests fast
W, H = 1280, 720
ARMS = ((5, 7), (7, 9), (6, 8), (8, 10))


@pytest.fixture(scope="module")
def sequences():
    kp = mocap.load_shipped(CLIP)
    return kp, {n: synth.make_sequence(np.random.default_rng(i), kp, n)
                for i, n in enumerate(synth.SCENARIOS)}


def _pose(seq):
    return seq.object_rot6d, seq.object_transl, seq.object_scale


@pytest.mark.parametrize("name", list(synth.SCENARIOS))
def test_sequences_satisfy_their_contact_constraints(sequences, name):
    kp, seqs = sequences
    seq = seqs[name]
    sc = synth.SCENARIOS[name]
    cat = objects.load_category(seq.category)
    T = len(kp)
    assert seq.kp3d.shape == (T, 17, 3) and seq.object_kp3d.shape == (T, cat.num_keypoints, 3)
    assert seq.object_rot6d.shape == (T, 6) and seq.object_scale.shape == ()
    assert sc.scale[0] <= seq.object_scale <= sc.scale[1]
    # The object keypoints are the canonical ones under the pose.
    np.testing.assert_allclose(seq.object_kp3d, objects.to_world(cat.keypoints, *_pose(seq)),
                               atol=1e-5)
    # Wrists on the gripped faces (HAND_OFFSET out) during contact, where the arms reach.
    d, _ = metrics.distance_to_object(seq.kp3d[:, synth.WRISTS], _pose(seq), cat)
    d = np.asarray(d)[seq.contact] * 1000
    assert abs(np.median(d) - synth.HAND_OFFSET * 1000) < 1.0
    assert np.percentile(d, 95) < 100.0
    # Never below the floor; floor objects stand on it, carried ones are lifted.
    ground = np.asarray(metrics.ground_penetration(_pose(seq), cat))
    assert ground.max() < 1e-3
    lowest = np.asarray(objects.to_world(cat.vertices, *_pose(seq)))[..., 2].min(-1)
    if sc.carried:
        assert seq.contact.all() and lowest.min() > 0.3
    else:
        np.testing.assert_allclose(lowest, 0.0, atol=1e-5)
        t0 = int(np.argmax(seq.contact))
        assert 0 < t0 < T and seq.contact[t0:].all()
        # Still before contact, moving with the person after it.
        np.testing.assert_array_equal(seq.object_transl[:t0 + 1], seq.object_transl[[t0]].repeat(t0 + 1, 0))
        assert np.linalg.norm(seq.object_transl[-1] - seq.object_transl[t0]) > 0.5
    # The IK keeps the arm bones of the mocap and leaves the legs alone.
    for a, b in ARMS:
        np.testing.assert_allclose(np.linalg.norm(seq.kp3d[:, a] - seq.kp3d[:, b], axis=-1),
                                   np.linalg.norm(kp[:, a] - kp[:, b], axis=-1), atol=2e-3)
    np.testing.assert_array_equal(seq.kp3d[:, 11:], kp[:, 11:])
    # Coarse body penetration stays small on this walk.
    assert np.asarray(metrics.body_penetration(seq.kp3d, _pose(seq), cat)).max() < 50.0


def test_two_bone_ik_reaches_reachable_targets_with_exact_bones():
    rng = np.random.default_rng(0)
    root = rng.normal(size=(50, 3))
    target = root + synth._unit(rng.normal(size=(50, 3))) * rng.uniform(0.1, 0.5, (50, 1))
    mid, end = synth.two_bone_ik(root, target, rng.normal(size=(50, 3)), 0.3, 0.25)
    np.testing.assert_allclose(end, target, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(mid - root, axis=-1), 0.3, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(end - mid, axis=-1), 0.25, atol=1e-6)


def test_self_occlusion_of_a_box_seen_from_the_front():
    cat = objects.load_category("box")
    eyes = np.array([[5.0, 0.0, 0.2], [-5.0, 0.0, 0.2], [0.0, 0.0, 6.0]])
    hidden = synth.self_occluded(np.broadcast_to(cat.keypoints, (3,) + cat.keypoints.shape),
                                 cat.triangles.astype(np.float64), eyes)
    front = np.array(["front" in n for n in cat.keypoint_names])
    top = np.array([n.startswith("top") for n in cat.keypoint_names])
    np.testing.assert_array_equal(hidden, np.stack([~front, front, ~top]))


def _cv2_project(points, w2c, K):
    out = []
    for t in range(len(points)):
        rvec, _ = cv2.Rodrigues(w2c[t, :3, :3].astype(np.float64))
        pix, _ = cv2.projectPoints(points[t].astype(np.float64), rvec,
                                   w2c[t, :3, 3].astype(np.float64), K.astype(np.float64), None)
        out.append(pix[:, 0])
    return np.stack(out)


def test_rendered_object_keypoints_match_opencv_and_form_a_valid_archive_clip(sequences):
    _, seqs = sequences
    seq = seqs["move_chair"]
    rng = np.random.default_rng(0)
    K = cameras.sample_intrinsics(rng, W, H, (50.0, 60.0))
    w2c = cameras.sample_trajectory(rng, seq.kp3d, "track")
    clip = synth.render_hoi(seq, w2c, K, (W, H), rng, render2d.CLEAN)
    seen = clip["object_scores"] > 0
    assert 0.3 < seen.mean() < 1.0  # the chair hides some of its own keypoints
    np.testing.assert_allclose(clip["object_keypoints"][seen],
                               _cv2_project(seq.object_kp3d, w2c, K)[seen], atol=1e-2)
    np.testing.assert_allclose(clip["keypoints"], _cv2_project(seq.kp3d, w2c, K), atol=1e-2)
    parsed = archive.clip_from_arrays("hoi", clip)
    assert parsed.object_category == "chair" and parsed.object_keypoints.shape == (77, 10, 2)
    # Detector noise moves object keypoints by about sigma × their bounding box.
    noisy = synth.render_hoi(seq, w2c, K, (W, H), np.random.default_rng(1), render2d.NoiseConfig())
    both = seen & (noisy["object_scores"] > 0)
    err = np.linalg.norm(noisy["object_keypoints"] - clip["object_keypoints"], axis=-1)[both]
    bbox = np.broadcast_to(render2d.bbox_size(clip["object_keypoints"])[:, None], seen.shape)[both]
    assert 0.5 < np.median(err / bbox) / (0.02 * np.sqrt(2 * np.log(2))) < 1.5


def test_training_clip_layout_and_end_to_end_object_pose():
    rng = np.random.default_rng(3)
    rec = synth.hoi_training_clip(rng, "box", clip=CLIP, views=4, noise=render2d.CLEAN)
    M = rec["num_object_keypoints"]
    T = rec["kp3d"].shape[0]
    assert M == 8 and rec["object_category"] == "box" and rec["name"].startswith(CLIP)
    assert rec["keypoints"].shape == (T, 4, 17 + M, 2) and rec["scores"].shape == (T, 4, 17 + M)
    assert rec["w2c"].shape == (T, 4, 4, 4) and rec["intrinsics"].shape == (T, 4, 3, 3)
    assert rec["kp3d"].shape == (T, 17 + M, 3) and rec["contact"].shape == (T,)
    # Every view's 2D is the projection of the 3D truth (human and object keypoints alike).
    for v in range(4):
        pix, _ = render2d.project(rec["kp3d"], rec["w2c"][:, v], rec["intrinsics"][:, v])
        ok = rec["scores"][:, v] > 0
        np.testing.assert_allclose(rec["keypoints"][:, v][ok], pix[ok], atol=1e-2)
    # Triangulate the object keypoints from the views, recover the pose (Sec. 2.2).
    obj = slice(17, 17 + M)
    weights = rec["scores"][:, :, obj]
    Q = triangulate(jnp.asarray(rec["keypoints"][:, :, obj]), jnp.asarray(rec["intrinsics"]),
                    jnp.asarray(rec["w2c"]), jnp.asarray(weights))
    seen_twice = (weights > 0).sum(1) >= 2
    truth = (rec["object_rot6d"], rec["object_transl"], rec["object_scale"])
    errors = {}
    for sigma in (0.0, pose.SMOOTH_SIGMA):
        out = pose.object_pose_from_keypoints(Q, seen_twice, "box", sigma=sigma)
        errors[sigma] = [np.asarray(e) for e in metrics.pose_error(
            (out["object_rot6d"], out["object_transl"], out["object_scale"]), truth)]
    rot, trans, scale = errors[0.0]  # clean views: exact up to float32
    assert rot.max() < 0.05 and trans.max() < 0.5 and scale < 0.01
    # Smoothing rounds off the kink where a pushed object starts moving at walking speed.
    rot, trans, scale = errors[pose.SMOOTH_SIGMA]
    assert np.median(rot) < 0.1 and np.median(trans) < 2.0 and trans.max() < 60.0 and scale < 0.01


def test_errors():
    with pytest.raises(ValueError, match="no HOI scenario uses category 'sofa'"):
        synth.hoi_training_clip(np.random.default_rng(0), "sofa")
    with pytest.raises(ValueError, match="unknown HOI scenario"):
        synth.make_sequence(np.random.default_rng(0), mocap.load_shipped(CLIP), "juggle")
    with pytest.raises(ValueError, match="needs at least"):
        synth.make_sequence(np.random.default_rng(0), mocap.load_shipped(CLIP)[:10], "push_box")
