"""Training program on 8 fake CPU devices: sharded step, overfitting, resume, sample quality, logs."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from anylift_jax import config as config_lib
from anylift_jax import sharding, skeleton, train, train_log, viz
from anylift_jax.data import mocap, normalize
from anylift_jax.diffusion import samplers

def tiny(**train_overrides):
    """The tiny preset, smaller still so that each compile takes seconds on a busy machine."""
    c = config_lib.load("configs/single_view.py:tiny")
    c.model.num_layers = 1
    c.data.update(batch_size=8, num_frames=16)
    c.optim.warmup_steps = 20
    c.train.update({"num_steps": 300, **train_overrides})
    return c


@pytest.fixture(scope="module")
def setup():
    config = tiny()
    mesh = sharding.make_mesh()
    graphdef, rest, _, tx = train.init_state(config, mesh)
    step = train.make_train_step(config, graphdef, rest, tx, mesh)
    batch = sharding.shard_batch(next(train.make_iterator(config)), mesh)
    return config, mesh, step, batch


def test_sharded_train_step_runs(setup):
    config, mesh, step, batch = setup
    assert mesh.devices.size == 8
    state = train.init_state(config, mesh)[2]
    assert batch["x0"].shape == (8, 16, 17, 2)
    assert len(batch["x0"].sharding.device_set) == 8
    before = jax.device_get(state["params"])
    for _ in range(2):  # the warm-up starts at learning rate 0
        state, metrics = step(state, batch)
    assert int(state["step"]) == 2
    assert all(np.isfinite(float(v)) for v in metrics.values())
    changed = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - b).max(), state["params"], before)
    assert max(jax.tree.leaves(changed)) > 0


def test_tiny_model_overfits_one_batch(setup):
    config, mesh, step, batch = setup
    state = train.init_state(config, mesh)[2]
    losses = []
    for _ in range(300):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[-20:]) < np.mean(losses[:5]) / 10, (losses[:5], losses[-20:])


@pytest.mark.slow  # three program runs, ~50 s on 2 busy cores
def test_resume_continues_exactly(tmp_path):
    config = tiny(num_steps=8, checkpoint_every=4, log_every=4)
    straight = train.train(config, str(tmp_path / "a"))
    train.train(config, str(tmp_path / "b"), stop_at=4)  # interrupted after step 4
    resumed = train.train(config, str(tmp_path / "b"))
    assert int(resumed["step"]) == 8
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # A run that ignored the checkpoint's data position would see other batches and end elsewhere.
    assert (tmp_path / "a" / "metrics.jsonl").read_text().count("\n") == 2


@pytest.mark.slow
def test_trained_tiny_model_samples_match_heldout_motion(tmp_path):
    """DDIM samples for held-out clips' conditioning (camera, lines) land near the real 2D motion."""
    config = config_lib.load("configs/single_view.py:tiny")
    config.train.update(num_steps=1500, checkpoint_every=1500)
    state = train.train(config, str(tmp_path))
    mesh = sharding.make_mesh()
    graphdef, rest, _, _ = train.init_state(config, mesh)
    held = config.copy_and_resolve_references()
    held.data.update(clips=mocap.HELDOUT, proj_fraction=0.0, batch_size=32)
    batch = jax.tree.map(jnp.asarray, next(train.make_iterator(held, seed=123)))
    samples = samplers.sample_model(config, graphdef, rest, state["ema"], batch, jax.random.key(7))
    truth = normalize.compose(batch["x0"])

    def error(x):  # mean 2D joint distance on the global motion, model units (frame-0 person = 1)
        return float(jnp.linalg.norm(normalize.compose(x) - truth, axis=-1).mean())

    noise = jax.random.normal(jax.random.key(8), truth.shape)
    mean_pose = jnp.broadcast_to(batch["x0"].mean((0, 1), keepdims=True), truth.shape)
    err, err_noise, err_mean = error(samples), error(noise), error(mean_pose)
    print(f"sample error {err:.3f}, noise {err_noise:.3f}, mean pose {err_mean:.3f}")
    assert err < 0.3 * err_noise
    assert err < 0.7 * err_mean


def test_multi_view_sampling_reproduces_the_input_view():
    config = config_lib.load("configs/multi_view.py:tiny")
    config.model.num_layers = 1
    config.diffusion.sample_steps = 4
    mesh = sharding.make_mesh()
    graphdef, rest, state, _ = train.init_state(config, mesh)
    r = np.random.default_rng(0)
    b, v, t, k = 2, config.model.num_views, 8, 17
    batch = {"x0": jnp.asarray(r.normal(size=(b, v, t, k, 2)) * 0.3, jnp.float32),
             "cam": jnp.zeros((b, v, t, 12)), "mask": jnp.ones((b, t)).at[:, -2:].set(0),
             "joint_mask": jnp.ones((b, v, t, k)).at[:, 0, :, 0].set(0)}
    out = samplers.sample_model(config, graphdef, rest, state["params"], batch, jax.random.key(0))
    assert out.shape == (b, v, t, k, 2)
    np.testing.assert_allclose(out[:, 0, :-2, 1:], batch["x0"][:, 0, :-2, 1:], atol=1e-6)
    assert np.abs(np.asarray(out[:, 0, :-2, 0] - batch["x0"][:, 0, :-2, 0])).min() > 0  # hidden joint sampled
    assert np.all(np.asarray(out[:, :, -2:]) == 0)  # padding zeroed


def read_tensorboard(logdir):
    """TensorBoard's own reader (not tensorboardX, which wrote the files)."""
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={event_accumulator.SCALARS: 0,
                                                                        event_accumulator.IMAGES: 0})
    acc.Reload()
    return acc


@pytest.mark.slow  # one program run plus the sampler's compile, ~30 s on 2 busy cores
def test_run_logs_scalars_to_tensorboard_and_sample_sheets(tmp_path):
    config = tiny(num_steps=4, log_every=2, checkpoint_every=4, sample_every=4)
    config.diffusion.sample_steps = 2
    train.train(config, str(tmp_path))
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in logged] == [2, 4]
    names = set(logged[0]) - {"step"}
    assert {"loss", "grad_norm", "steps_per_s", "examples_per_s"} <= names
    acc = read_tensorboard(tmp_path / "tb")
    assert set(acc.Tags()["scalars"]) == names
    for name in names:
        events = acc.Scalars(name)
        assert [e.step for e in events] == [2, 4]
        np.testing.assert_allclose([e.value for e in events], [m[name] for m in logged], rtol=1e-6)  # float32 in TB
    # One sheet, at step 4: 8 single-view clips × 4 frames of 160-pixel cells, also in TensorBoard.
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_4.png"]
    png = np.asarray(Image.open(tmp_path / "samples" / "step_4.png"))
    cell = viz.SAMPLE_CELL_PX
    assert png.shape == (train_log.SHEET_ROWS * cell, train_log.SHEET_FRAMES * cell, 3)
    assert len(np.unique(png.reshape(-1, 3), axis=0)) > 10  # skeletons drawn, not a blank canvas
    (image,) = acc.Images("samples")
    assert (image.step, image.width, image.height) == (4, png.shape[1], png.shape[0])


def test_resumed_log_replaces_the_interrupted_runs_later_steps(tmp_path):
    """An interrupted run logged steps 1-3 after its last checkpoint at 1; the resumed run (start 1)
    logs 2-3 again, and TensorBoard shows each step once, with the resumed run's values."""
    first = train_log.TrainLog(str(tmp_path), 0)
    for step in (1, 2, 3):
        first.scalars({"step": step, "loss": float(step)})
    first.close()
    resumed = train_log.TrainLog(str(tmp_path), 1)
    for step in (2, 3):
        resumed.scalars({"step": step, "loss": 10.0 * step})
    resumed.close()
    events = read_tensorboard(tmp_path / "tb").Scalars("loss")
    assert [(e.step, e.value) for e in events] == [(1, 1.0), (2, 20.0), (3, 30.0)]


def test_sample_sheet_draws_real_and_generated_where_they_are():
    """Real skeleton (grey) only where observed, the generated one (colours) where it is."""
    t, k = 6, skeleton.NUM_JOINTS
    r = np.random.default_rng(0)
    pose = np.stack([r.uniform(-1.5, 1.5, k), r.uniform(-0.3, 0.3, k)], -1).astype(np.float32)
    real = np.broadcast_to(pose, (2, t, k, 2)).copy()
    generated = real + np.array([0.0, 1.2], np.float32)  # below the real one (y down)
    visible = np.ones((2, t, k), bool)
    visible[1] = False  # row 1: nothing observed, so no frame to show
    image = viz.skeleton_sheet(real, generated, visible, ["a", "b"], frames=2).astype(int)
    cell = viz.SAMPLE_CELL_PX
    assert image.shape == (2 * cell, 2 * cell, 3)
    grey = np.all(np.abs(image - 191) <= 2, axis=-1)  # matplotlib "0.75"
    coloured = image.max(-1) - image.min(-1) > 60
    # Axes span y ∈ [-1.05, 2.25] (square around both, 10 % margin): the real skeleton falls in
    # pixel rows 36-65 and the generated one in 95-124; the labels lie above 20 and below 128.
    upper, lower = slice(20, 80), slice(80, 128)
    for col in (slice(0, cell), slice(cell, 2 * cell)):
        assert grey[upper, col].sum() > 100 and grey[lower, col].sum() == 0
        assert coloured[lower, col].sum() > 100 and coloured[upper, col].sum() == 0
    assert grey[cell + 20:cell + 128].sum() == 0 and coloured[cell + 20:cell + 128].sum() == 0
