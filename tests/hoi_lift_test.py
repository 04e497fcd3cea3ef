"""HOI through Stage-2 data, training and batch lifting (Sec. 2.2): the HOI store, the windows of
an HOI model, the triangulation + object-pose step on oracle views, and a tiny HOI model trained
and lifting an archive end to end."""
import dataclasses
import functools

import jax
import numpy as np
import pytest

from anylift_jax import config as config_lib
from anylift_jax import checkpoints, lifting, sharding, train
from anylift_jax.data import build, cameras, mocap, pipeline, render2d, store
from anylift_jax.data import normalize as nz
from anylift_jax.hoi import metrics, objects, synth
from anylift_jax.io import archive
from opencv_reference import project_sequence

CLIP = "amp_humanoid_walk"  # 77 frames: keeps the tests fast
T = 16  # frames per store window and model window
W, H = 1280, 720


@pytest.fixture(scope="module")
def hoi_store(tmp_path_factory):
    """configs/data/hoi_multi_view.py, one T-frame window per clip and render, a noise-free input view."""
    c = config_lib.load("configs/data/hoi_multi_view.py")
    d = c.data
    d.update(root=str(tmp_path_factory.mktemp("hoi")), num_frames=T, renders_per_clip=2,
             window_stride=1000, renders_per_shard=4, batch_size=8)
    d.input_noise.update(sigma=0.0, dropout=0.0, swap=0.0)
    build.build(c, d.root, progress=False)
    return c


def _box_hidden(eyes):
    """(T, 8) bool: box corners hidden by the box itself from canonical eyes (T, 3). A convex
    solid hides a corner iff every face through it faces away from the eye."""
    cat = objects.load_category("box")
    centre = 0.5 * (cat.vertices.min(0) + cat.vertices.max(0))
    normals = np.sign(cat.keypoints - centre)  # per corner its 3 faces' outward axes
    towards = (eyes[:, None] - cat.keypoints) * normals  # (T, 8, 3): > 0 where the face is seen
    return (towards <= 0).all(-1)


def test_hoi_store_records_and_batches(hoi_store):
    d = hoi_store.data
    src = store.StoreSource(f"{d.root}/train/multiview")
    assert len(src) == 2 * len(mocap.TRAIN)
    cat = objects.load_category("box")
    M = cat.num_keypoints
    hidden_seen = 0
    for i in range(len(src)):
        r = src[i]
        assert r["keypoints"].shape == (T, 4, 17 + M, 2) and r["kp3d"].shape == (T, 17 + M, 3)
        # the stored 3D object keypoints are the category's under the stored pose
        np.testing.assert_allclose(
            r["kp3d"][:, 17:], objects.to_world(cat.keypoints, r["object_rot6d"], r["object_transl"],
                                                r["object_scale"]), atol=1e-4)
        # ring views: all keypoints in the image, hidden object ones included, are the exact
        # projections (targets)
        for v in range(1, 4):
            pix = project_sequence(r["kp3d"], r["w2c"][:, v], r["intrinsics"][:, v])
            inside = (pix >= 0).all(-1) & (pix < d.image_size).all(-1)
            assert inside[:, 17:].mean() > 0.5
            np.testing.assert_array_equal(r["scores"][:, v], inside.astype(np.float32))
            np.testing.assert_allclose(r["keypoints"][:, v][inside], pix[inside], atol=2e-2)
        # input view: the object hides its own far corners, the seen ones are projections
        R = np.stack([r["object_rot6d"][:, :3], r["object_rot6d"][:, 3:],
                      np.cross(r["object_rot6d"][:, :3], r["object_rot6d"][:, 3:])], -1)
        eyes = np.einsum("tji,tj->ti", R, nz.camera_centers(r["w2c"][:, 0]) - r["object_transl"]) / r["object_scale"]
        pix = project_sequence(r["kp3d"][:, 17:], r["w2c"][:, 0], r["intrinsics"][:, 0])
        inside = (pix >= 0).all(-1) & (pix < d.image_size).all(-1)
        hidden = _box_hidden(eyes)
        np.testing.assert_array_equal(r["scores"][:, 0, 17:] > 0, inside & ~hidden)
        hidden_seen += hidden.sum()
        seen = inside & ~hidden
        np.testing.assert_allclose(r["keypoints"][:, 0, 17:][seen], pix[seen], atol=2e-2)
    assert hidden_seen > 0

    # The batch: model space from the body alone, object keypoints not decomposed.
    r = src[0]
    aug = pipeline.Augment(window=T, ring_views=4, ring_partner_prob=0.0, epipole_range=0.0, occlusion_prob=0.0)
    el = pipeline.window_example(r, np.random.default_rng(0), aug)
    b = pipeline.multi_view_batch({k: v[None] for k, v in el.items()})
    assert b["x0"].shape == (1, 4, T, 17 + M, 2)
    K0 = r["intrinsics"][:, 0]
    body, params = nz.normalize(r["keypoints"][:, 0, :17], K0, r["scores"][:, 0, :17] > 0)
    jm = b["joint_mask"][0, 0] > 0
    np.testing.assert_array_equal(jm[:, 17:], r["scores"][:, 0, 17:] > 0)
    obj = params.scale * (nz.rays(r["keypoints"][:, 0, 17:], K0) - params.center)
    np.testing.assert_allclose(b["x0"][0, 0, :, 17:][jm[:, 17:]], obj[jm[:, 17:]], atol=1e-5)
    np.testing.assert_allclose(nz.compose(b["x0"][0, 0])[:, :17][jm[:, :17]], body[jm[:, :17]], atol=1e-5)
    # the ring views' object keypoints are masked only outside the image
    np.testing.assert_array_equal(b["joint_mask"][0, 1:, :, 17:], np.swapaxes(r["scores"][:, 1:, 17:], 0, 1))


def _hoi_clip(scenario, camera, noise, seed=0):
    kp = mocap.load_shipped(CLIP)
    rng = np.random.default_rng(seed)
    seq = synth.make_sequence(rng, kp, scenario)
    K = cameras.sample_intrinsics(rng, W, H, (50.0, 60.0))
    w2c = cameras.sample_trajectory(rng, seq.kp3d, camera)
    return seq, synth.render_hoi(seq, w2c, K, (W, H), rng, noise)


def test_windows_of_an_hoi_model_keep_the_body_model_space():
    _, arrays = _hoi_clip("push_box", "internet", render2d.NoiseConfig())
    clip = archive.clip_from_arrays("hoi", arrays)
    human = archive.clip_from_arrays("human", {k: v for k, v in arrays.items() if not k.startswith("object")})
    base = lifting.windows.make_windows(0, clip, 32, 8, 0.3)
    for c in (clip, human):
        wins = lifting.windows.make_windows(0, c, 32, 8, 0.3, num_object_keypoints=8)
        assert len(wins) == len(base)
        for w, b in zip(wins, base):
            assert w.x.shape == (32, 25, 2) and w.valid.shape == (32, 25)
            np.testing.assert_array_equal(w.x[:, :17], b.x)
            np.testing.assert_array_equal(w.valid[:, :17], b.valid)
            for f in ("scale", "center", "track", "w2c", "mask", "frames"):
                np.testing.assert_array_equal(getattr(w, f), getattr(b, f))
            if c is human:
                assert not w.valid[:, 17:].any()
            else:
                seen = (clip.object_scores[w.frames] > 0.3) & (b.mask[:, None] > 0)
                np.testing.assert_array_equal(w.valid[:, 17:], seen)
    assert lifting.objects.object_problem(human, 8, "box") is None and lifting.objects.object_problem(clip, 8, "box") is None
    assert "no object keypoints" in lifting.objects.object_problem(clip, 0, None)
    assert "trained on 'table'" in lifting.objects.object_problem(clip, 8, "table")
    assert "takes 10" in lifting.objects.object_problem(clip, 10, None)
    odd = dataclasses.replace(clip, object_category="sofa")
    assert "unknown object category 'sofa'" in lifting.objects.object_problem(odd, 8, None)


def test_triangulation_and_pose_on_oracle_views_recover_the_object():
    """The lifting geometry with the model's generated views replaced by the true projections into
    the ring it places: body and object keypoints and the object pose come back (clean input)."""
    seq, arrays = _hoi_clip("carry_box", "track", render2d.CLEAN, seed=1)
    clip = archive.clip_from_arrays("hoi", arrays)
    n, V = len(seq.kp3d), 4
    (w,) = lifting.windows.make_windows(0, clip, n, 0, 0.3, num_object_keypoints=8)  # one window, the whole clip
    w2c_v, A, _ = jax.jit(functools.partial(lifting.sampling.ring_geometry, num_views=V))(w.w2c, w.scale, w.center, w.track)
    truth = np.concatenate([seq.kp3d, seq.object_kp3d], 1)  # (T, 25, 3)
    w2c_v, A = np.asarray(w2c_v), np.asarray(A)
    oracle = [project_sequence(truth, w2c_v[v], np.broadcast_to(A[v], (n, 3, 3))) for v in range(1, V)]
    xg = np.stack([nz.compose(w.x)] + oracle).astype(np.float32)  # (V, T, 25, 2) model coordinates
    kp3d = np.asarray(jax.jit(lifting.sampling.triangulate_views, static_argnums=4)(
        xg[None], A[None], w2c_v[None], w.valid[None], 1.0))[0]
    err = np.linalg.norm(kp3d - truth, axis=-1) * 1000
    assert err.max() < 1.0, err.max()  # mm, hidden object corners included
    observed = clip.object_scores > 0.3
    assert 0 < observed.mean() < 1  # the box hides some of its corners
    pose = lifting.objects.object_pose(kp3d[:, 17:], observed, clip.object_category, 1e-3)
    rot, trans, scale = (np.asarray(e) for e in metrics.pose_error(
        (pose["object_rot6d"], pose["object_transl"], pose["object_scale"]),
        (seq.object_rot6d, seq.object_transl, seq.object_scale)))
    print(f"oracle object pose: rotation max {rot.max():.3f} deg, translation max {trans.max():.2f} mm, "
          f"scale {float(scale):.4f} %")
    assert rot.max() < 2.0 and trans.max() < 10.0 and scale < 1.0
    assert lifting.objects.object_pose(kp3d[:, 17:], np.zeros_like(observed), "box", 1e-3) is None
    # the evaluation summary of hoi.metrics agrees with the per-frame errors
    truth_arrays = {"object_rot6d": seq.object_rot6d, "object_transl": seq.object_transl,
                    "object_scale": seq.object_scale, "contact": seq.contact}
    summary = metrics.evaluate_object(kp3d[:, :17], pose, truth_arrays, "box")
    np.testing.assert_allclose(summary["object_rot"], rot.mean(), rtol=1e-4)
    np.testing.assert_allclose(summary["object_transl"], trans.mean(), rtol=1e-4)
    # the body and object come back in contact (wrists HAND_OFFSET off the box) and on the floor
    assert abs(summary["contact"] - synth.HAND_OFFSET * 1000) < 2.0
    assert summary["ground_penetration"] < 1.0 and summary["body_penetration"] < 50.0


def _lift_config():
    c = config_lib.load("configs/lift/default.py")
    c.lift.update(fit_body=False, batch_size=8, overlap=4, clips_per_batch=4)
    return c


def _write_archive(folder, clips):
    folder.mkdir()
    for name, arrays in clips.items():
        np.savez(folder / f"{name}.npz", **arrays)


@pytest.mark.slow  # a tiny training and three lifting compiles, ~70 s on 2 busy cores
def test_tiny_hoi_model_trains_and_lifts_an_archive(hoi_store, tmp_path, capsys):
    config = config_lib.load("configs/hoi.py:paper,box")
    config.model.update(d_model=32, num_layers=1, num_heads=2, head_dim=16, ffn_dim=64, dropout=0.0)
    config.data = hoi_store.data
    config.diffusion.sample_steps = 2
    config.optim.warmup_steps = 1
    config.train.update(num_steps=4, checkpoint_every=4, log_every=2, sample_every=0)
    state = train.train(config, str(tmp_path / "run"))
    assert int(state["step"]) == 4
    model = checkpoints.load_model(str(tmp_path / "run"))
    assert model[0].model.num_object_keypoints == 8 and model[0].data.object_category == "box"

    seq, box = _hoi_clip("push_box", "internet", render2d.NoiseConfig(), seed=2)
    _, chair = _hoi_clip("move_chair", "orbit", render2d.NoiseConfig(), seed=3)
    human = {k: v for k, v in box.items() if not k.startswith("object")}
    _write_archive(tmp_path / "in", {"box": box, "chair": chair, "human": human})
    summary = lifting.lift_archive(_lift_config(), model, tmp_path / "in", tmp_path / "out", progress=False)
    assert {k: summary[k] for k in ("done", "skipped", "failed")} == {"done": 3, "skipped": 0, "failed": []}
    assert set(summary["quality"]) == {p.stem for p in (tmp_path / "out").iterdir()}
    out = {n: archive.validate_output(tmp_path / "out" / f"{n}.npz") for n in ("box", "chair", "human")}
    n = len(seq.kp3d)
    assert out["box"]["keypoints3d"].shape == (n, 17, 3)
    assert out["box"]["object_rot6d"].shape == (n, 6) and out["box"]["object_transl"].shape == (n, 3)
    assert out["box"]["object_scale"].shape == () and out["box"]["object_scale"] > 0
    for name in ("chair", "human"):  # a chair for a box model, no object: human only
        assert not set(archive.OBJECT_POSE_KEYS) & set(out[name])
    assert "trained on 'box' objects, not 'chair'" in capsys.readouterr().err

    # A human-only model ignores the object (one warning) and lifts the human as without it.
    human_model = config_lib.load("configs/multi_view.py:tiny")
    human_model.model.update(d_model=32, num_layers=1, num_heads=2, head_dim=16, ffn_dim=64)
    human_model.data.num_frames = T
    human_model.diffusion.sample_steps = 2
    graphdef, rest, hstate, _ = train.init_state(human_model, sharding.make_mesh())
    hmodel = (human_model, graphdef, rest, hstate["params"])
    _write_archive(tmp_path / "in2", {"box": box, "box_again": box})
    lifting.lift_archive(_lift_config(), hmodel, tmp_path / "in2", tmp_path / "out2", progress=False)
    err = capsys.readouterr().err
    assert err.count("the model takes no object keypoints") == 1
    _write_archive(tmp_path / "in3", {"box": human})
    lifting.lift_archive(_lift_config(), hmodel, tmp_path / "in3", tmp_path / "out3", progress=False)
    with_obj = archive.validate_output(tmp_path / "out2" / "box.npz")
    without = archive.validate_output(tmp_path / "out3" / "box.npz")
    assert not set(archive.OBJECT_POSE_KEYS) & set(with_obj)
    np.testing.assert_array_equal(with_obj["keypoints3d"], without["keypoints3d"])
