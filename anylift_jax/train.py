"""Train a denoiser: `python -m anylift_jax.train --config configs/<x>.py [--config.key=value …] --workdir DIR`.

Sections: config, data, model/optimiser state, train step, sampling, checkpoint, loop. One code
path for one CPU, one GPU or a multi-host slice: a 1-D 'data' mesh over all devices, batches
sharded on it, parameters, optimiser state and EMA replicated, a jitted step with donated state.
Resume is automatic from `--workdir/checkpoints`; the step's randomness is a function of the step
number and the data iterator state is checkpointed, so a resumed run continues exactly.
Metrics (loss terms, grad norm, steps/s, examples/s) go to stdout (tqdm), `--workdir/metrics.jsonl` and
TensorBoard event files in `--workdir/tb`; every `train.sample_every` steps the EMA model samples a
fixed batch and a sheet of generated vs real 2D skeletons goes to `--workdir/samples/step_<N>.png`
and TensorBoard (`anylift_jax.train_log`).
"""
import importlib
import json
import os
import time

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm
from flax import nnx

from anylift_jax import models, sharding, skeleton
from anylift_jax.data import cameras, mocap, normalize
from anylift_jax.diffusion import losses, samplers
from anylift_jax.diffusion.schedules import make_schedule


# ----------------------------------------------------------------------------------------- config
def default_config():
    """Every field the program reads; the files in configs/ start from this and override."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = dict(name="single_view", num_keypoints=17, num_object_keypoints=0, num_views=4, d_model=512,
                   num_layers=4, num_heads=4, head_dim=256, ffn_dim=512, dropout=0.1, dtype="float32")
    # clip_x0: model space puts the frame-0 person 1 unit tall at the origin; roots of moving
    # subjects leave [-1, 1], so the clamp is wider than MVLift's.
    c.diffusion = dict(schedule="cosine", num_steps=1000, clip_x0=4.0, sample_steps=50, eta=0.0)
    c.loss = dict(line_weight=1.0)
    # name: a key of DATA_SOURCES. mocap_projection: shipped mocap through random moving cameras.
    c.data = dict(name="mocap_projection", batch_size=32, num_frames=120, clips=mocap.TRAIN, proj_fraction=0.25,
                  epoch_size=100_000)
    c.optim = dict(lr=2e-4, warmup_steps=1000, final_lr_fraction=0.01, weight_decay=0.0, grad_clip=1.0,
                   b1=0.9, b2=0.999)
    # object_drop_prob: chance that an object keypoint of the conditioning view is hidden (HOI).
    # sample_every: steps between sample sheets (0: none).
    c.train = dict(num_steps=600_000, ema_decay=0.995, log_every=100, checkpoint_every=5000, max_to_keep=3,
                   object_drop_prob=0.0, sample_every=1000)
    return ml_collections.ConfigDict(c)


# ------------------------------------------------------------------------------------------- data
class MocapProjectionSource:
    """Real 2D motion for training and tests: shipped mocap clips through random moving cameras.

    Item i (deterministic in (seed, i)): a window of `num_frames` frames of a clip, a camera
    3–5 m away at a random azimuth looking at the frame-0 pelvis and drifting at up to 0.5 m/s,
    projected to rays, normalised to model space (frame-0 mid-hip at 0, frame-0 box 1 unit) and
    decomposed; epipolar lines towards a random epipole in [-3, 3]² (MVLift's training epipoles).
    With probability `proj_fraction` the item is an X^proj sample: the pelvis' horizontal motion
    is removed in 3D and the camera is static.
    """

    def __init__(self, clips, num_frames, proj_fraction, epoch_size, seed):
        self.clips = [mocap.load_shipped(name) for name in clips]
        self.num_frames, self.proj_fraction, self.epoch_size, self.seed = num_frames, proj_fraction, epoch_size, seed

    def __len__(self):
        return self.epoch_size

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        clip = self.clips[rng.integers(len(self.clips))]
        start = rng.integers(max(len(clip) - self.num_frames, 0) + 1)
        pts = clip[start:start + self.num_frames].astype(np.float64)
        t = len(pts)
        is_proj = rng.random() < self.proj_fraction
        if is_proj:
            pts = normalize.recenter(pts)
        root = skeleton.mid_hip(pts)
        azimuth, dist = rng.uniform(0, 2 * np.pi), rng.uniform(3.0, 5.0)
        eye = root[0] + np.array([dist * np.cos(azimuth), dist * np.sin(azimuth), rng.uniform(-0.3, 0.6)])
        velocity = 0.0 if is_proj else rng.uniform(-0.5, 0.5, 3) * np.array([1.0, 1.0, 0.2]) / 30.0
        rot = cameras.look_at(eye, root[0])[:3, :3]
        w2c = np.tile(np.eye(4), (t, 1, 1))
        w2c[:, :3, :3] = rot
        w2c[:, :3, 3] = -(eye + np.arange(t)[:, None] * velocity) @ rot.T
        cam_pts = np.einsum("tij,tkj->tki", w2c[:, :3, :3], pts) + w2c[:, None, :3, 3]
        rays = cam_pts[..., :2] / cam_pts[..., 2:]
        center = skeleton.mid_hip(rays[0])
        x = (rays - center) / (rays[0].max(0) - rays[0].min(0)).max()
        lines = normalize.condition_lines(x, np.append(rng.uniform(-3.0, 3.0, 2), 1.0))
        cam = normalize.camera_condition(w2c, np.linalg.norm(skeleton.mid_hip(cam_pts[0])))
        pad = self.num_frames - t

        def padded(a):
            return np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).astype(np.float32)

        return {
            "x0": padded(normalize.decompose(x)), "cam": padded(cam),
            "lines": padded(lines), "mask": padded(np.ones(t)), "joint_mask": padded(np.ones((t, x.shape[1]))),
            "is_proj": np.float32(is_proj),
        }


def mocap_projection_iterator(config, *, process_index, process_count, seed):
    d = config.data
    source = MocapProjectionSource(d.clips, d.num_frames, d.proj_fraction, d.epoch_size, seed)
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat()
    ds = ds[process_index::process_count].batch(d.batch_size // process_count, drop_remainder=True)
    return iter(ds.to_iter_dataset())


# Data sources by `config.data.name`: "module:function" with the signature of
# `mocap_projection_iterator`, returning an iterator of this host's batches (dicts of numpy).
DATA_SOURCES = {
    "mocap_projection": "anylift_jax.train:mocap_projection_iterator",
    "pipeline": "anylift_jax.data.pipeline:make_iterator",
    "stage1_hybrid": "anylift_jax.synthesize:prior_iterator",  # Stage-1 prior on an archive + X^proj
}


def make_iterator(config, *, process_index=0, process_count=1, seed=None):
    """This host's batch iterator for `config.data.name` (see DATA_SOURCES)."""
    if config.data.name not in DATA_SOURCES:
        raise ValueError(f"config.data.name: unknown data source {config.data.name!r} ({', '.join(DATA_SOURCES)})")
    module, fn = DATA_SOURCES[config.data.name].split(":")
    return getattr(importlib.import_module(module), fn)(
        config, process_index=process_index, process_count=process_count,
        seed=config.seed if seed is None else seed)


# ---------------------------------------------------------------------------------- model & state
def make_optimizer(config):
    o = config.optim
    lr = optax.warmup_cosine_decay_schedule(0.0, o.lr, o.warmup_steps, max(config.train.num_steps, o.warmup_steps + 1),
                                            end_value=o.lr * o.final_lr_fraction)
    return optax.chain(optax.clip_by_global_norm(o.grad_clip),
                       optax.adamw(lr, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay))


def init_state(config, mesh):
    """(graphdef, rest, state, tx); state = {'step', 'params', 'opt', 'ema'} replicated on `mesh`.

    `rest` is the non-parameter model state (the dropout RNG stream), re-seeded from the step key
    inside the step, so it is a constant and not checkpointed. Initialisation runs as one jit
    (eagerly, every initialiser would compile on its own).
    """
    def build():
        return models.build_model(config.model, nnx.Rngs(params=config.seed, dropout=config.seed))

    graphdef = nnx.split(nnx.eval_shape(build), nnx.Param, ...)[0]
    tx = make_optimizer(config)

    def init():
        _, params, rest = nnx.split(build(), nnx.Param, ...)
        state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt": tx.init(params),
                 "ema": jax.tree.map(jnp.copy, params)}
        return state, rest

    state, rest = jax.jit(init, out_shardings=sharding.replicated(mesh))()
    return graphdef, rest, state, tx


def _object_keep(config, key, shape):
    """(…, K) float: 1 for human keypoints, Bernoulli(1 − object_drop_prob) for the M object keypoints."""
    k, m = config.model.num_keypoints, config.model.num_object_keypoints
    keep = jax.random.bernoulli(key, 1.0 - config.train.object_drop_prob, shape)
    return jnp.where(jnp.arange(k) < k - m, 1.0, keep.astype(jnp.float32))


def make_train_step(config, graphdef, rest, tx, mesh):
    """Jitted `step(state, batch) -> (state, metrics)`; state donated, batch sharded on 'data'."""
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_steps)
    multi_view = config.model.name == "multi_view"
    base_key = jax.random.key(config.seed)

    def loss_fn(params, batch, key):
        k_n, k_eps, k_drop, k_obj = jax.random.split(key, 4)
        model = nnx.merge(graphdef, params, rest, copy=True)
        nnx.reseed(model, dropout=k_drop)
        x0 = batch["x0"]
        n = jax.random.randint(k_n, (x0.shape[0],), 0, schedule.num_steps)
        x_n = schedule.q_sample(x0, n, jax.random.normal(k_eps, x0.shape))
        if multi_view:
            cond_mask = batch["joint_mask"][:, 0] * _object_keep(config, k_obj, batch["joint_mask"][:, 0].shape)
            return losses.multi_view_loss(models.predict(model, x_n, n, batch, cond_mask), batch)
        return losses.single_view_loss(models.predict(model, x_n, n, batch), batch, config.loss.line_weight)

    def step(state, batch):
        key = jax.random.fold_in(base_key, state["step"])
        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch, key)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        d = config.train.ema_decay
        ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state["ema"], params)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **terms}
        return {"step": state["step"] + 1, "params": params, "opt": opt, "ema": ema}, metrics

    repl = sharding.replicated(mesh)
    return jax.jit(step, in_shardings=(repl, sharding.data_sharded(mesh)), out_shardings=(repl, repl),
                   donate_argnums=0)


# --------------------------------------------------------------------------------------- sampling
def sample(config, graphdef, rest, params, batch, key, project=None):
    """DDIM samples X_0 for a batch's conditioning (`config.diffusion.sample_steps`, `eta`), zero on padding.

    Multi view: view 0 is the given input view, inpainted where `joint_mask[:, 0]` is set.
    project: optional map of each step's X̂_0 (`samplers.ddim_sample`).
    Dropout is off (`model.eval()`).
    """
    model = nnx.merge(graphdef, params, rest)
    model.eval()
    schedule = make_schedule(config.diffusion.schedule, config.diffusion.num_steps)
    x0 = batch["x0"]
    known = known_mask = None
    if config.model.name == "multi_view":
        known = jnp.broadcast_to(x0[:, :1], x0.shape)
        view0 = jnp.zeros(x0.shape[:-1], bool).at[:, 0].set(batch["joint_mask"][:, 0] > 0)
        known_mask = view0[..., None]
    out = samplers.ddim_sample(
        schedule, lambda x, n: models.predict(model, x, n, batch), key, x0.shape,
        num_steps=config.diffusion.sample_steps, eta=config.diffusion.eta, clip=config.diffusion.clip_x0,
        known=known, known_mask=known_mask, project=project)
    frame_axis = 2 if config.model.name == "multi_view" else 1
    return out * jnp.expand_dims(batch["mask"], [a for a in range(out.ndim) if a not in (0, frame_axis)])


def make_sheet_sampler(config, graphdef, rest, mesh, clips):
    """(batch, fn): the fixed batch of the sample sheets and jitted `fn(params) -> samples` (numpy).

    The batch is the first `clips` clips of the data stream at the run's seed as a lone process
    sees it, so every process holds the same one and sampling runs replicated; every process must
    call `fn` (it is one program on the mesh). The key is fixed: successive sheets differ only by
    the parameters.
    """
    c = config.copy_and_resolve_references()
    c.data.batch_size = clips
    if "num_workers" in c.data:  # one small batch is not worth starting worker processes
        c.data.num_workers = 0
    batch = next(make_iterator(c, process_index=0, process_count=1))
    repl = sharding.replicated(mesh)
    on_mesh = jax.tree.map(lambda x: jax.make_array_from_process_local_data(repl, np.asarray(x)), batch)
    run = jax.jit(lambda r, p, b: sample(config, graphdef, r, p, b, jax.random.key(config.seed)), out_shardings=repl)
    return batch, lambda params: np.asarray(run(rest, params, on_mesh).addressable_data(0))


# ------------------------------------------------------------------------------------- checkpoint
def checkpoint_manager(config, workdir):
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=config.train.max_to_keep,
                                             save_interval_steps=config.train.checkpoint_every))


def _save_args(state, data_iter):
    items = {"state": ocp.args.StandardSave(state)}
    if isinstance(data_iter, grain.DatasetIterator):
        items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    return ocp.args.Composite(**items)


def restore_latest(manager, state, data_iter):
    """(state, data_iter) from the newest checkpoint, or the given ones when there is none."""
    step = manager.latest_step()
    if step is None:
        return state, data_iter
    items = {"state": ocp.args.StandardRestore(state)}
    if isinstance(data_iter, grain.DatasetIterator):
        items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored["state"], data_iter


CONFIG_FILE = "config.json"


EXPORT_FILE = "ema.npz"


def _read_config(path):
    try:
        with open(os.path.join(path, CONFIG_FILE)) as f:
            return ml_collections.ConfigDict(json.load(f))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: no readable {CONFIG_FILE}, not a training workdir or exported model ({e})") from e


def load_model(path, step=None):
    """(config, graphdef, rest, ema_params) from a training workdir (checkpoint `step`, default the
    newest) or a folder written by `export_model`. Stage-1 synthesis and lifting sample with the
    EMA parameters."""
    path = os.path.abspath(path)
    config = _read_config(path)
    mesh = sharding.make_mesh()
    graphdef, rest, state, _ = init_state(config, mesh)
    exported = os.path.join(path, EXPORT_FILE)
    if os.path.exists(exported):
        leaves, treedef = jax.tree.flatten(state["ema"])
        with np.load(exported, allow_pickle=False) as f:
            arrays = [f[f"p{i}"] for i in range(len(leaves))]
        for a, b in zip(arrays, leaves):
            if a.shape != b.shape:
                raise ValueError(f"{exported}: parameter shapes do not match {CONFIG_FILE} ({a.shape} vs {b.shape})")
        ema = jax.device_put(jax.tree.unflatten(treedef, arrays), sharding.replicated(mesh))
        return config, graphdef, rest, ema
    manager = checkpoint_manager(config, path)
    if manager.latest_step() is None:
        raise ValueError(f"{path}: no checkpoint under {path}/checkpoints and no {EXPORT_FILE}")
    step = manager.latest_step() if step is None else step
    if step not in manager.all_steps():
        raise ValueError(f"{path}: no checkpoint of step {step}; have {manager.all_steps()}")
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(state)))
    manager.close()
    return config, graphdef, rest, restored["state"]["ema"]


def export_model(workdir, out, step=None):
    """Write the config and EMA parameters (only) of checkpoint `step` (default the newest) to
    `out`, for shipping.

    Every process calls it (loading is a collective); process 0 writes.
    """
    config, _, _, ema = load_model(workdir, step)
    if jax.process_index() != 0:
        return
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, CONFIG_FILE), "w") as f:
        f.write(config.to_json_best_effort(indent=2))
    leaves = jax.tree.leaves(jax.device_get(ema))
    np.savez(os.path.join(out, EXPORT_FILE), **{f"p{i}": np.asarray(x) for i, x in enumerate(leaves)})


# ------------------------------------------------------------------------------------------- loop
def train(config, workdir, *, stop_at=None):
    """Train until `config.train.num_steps` (or `stop_at`, to simulate an interruption); returns the state."""
    mesh = sharding.make_mesh()
    graphdef, rest, state, tx = init_state(config, mesh)
    data_iter = make_iterator(config, process_index=jax.process_index(), process_count=jax.process_count())
    manager = checkpoint_manager(config, workdir)
    state, data_iter = restore_latest(manager, state, data_iter)
    step_fn = make_train_step(config, graphdef, rest, tx, mesh)
    start, stop = int(state["step"]), min(config.train.num_steps, stop_at or config.train.num_steps)
    main = jax.process_index() == 0
    if main:  # the model's recipe, for `load_model`
        with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
            f.write(config.to_json_best_effort(indent=2))
    # Imported here: tensorboardX (which imports torch where installed) and matplotlib are for
    # training runs only, not for every user of `default_config` or `sample`.
    from anylift_jax import train_log  # noqa: PLC0415
    log = train_log.TrainLog(workdir, start) if main else None
    sample_every = config.train.sample_every
    if sample_every:
        sheet_batch, sample_fixed = make_sheet_sampler(config, graphdef, rest, mesh, train_log.sheet_clips(config))
    bar = tqdm.tqdm(range(start, stop), initial=start, total=stop, disable=not main)
    t_last, s_last = time.perf_counter(), start
    for step in bar:
        state, metrics = step_fn(state, sharding.shard_batch(next(data_iter), mesh))
        done = step + 1
        if done % config.train.log_every == 0 or done == stop:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            now = time.perf_counter()
            rate = (done - s_last) / (now - t_last)
            t_last, s_last = now, done
            metrics.update(step=done, steps_per_s=rate, examples_per_s=rate * config.data.batch_size)
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k != "step"})
            if main:
                log.scalars(metrics)
        if sample_every and done % sample_every == 0:
            t_sample = time.perf_counter()
            generated = sample_fixed(state["ema"])
            if main:
                log.samples(done, train_log.sample_sheet(sheet_batch, generated))
            t_last += time.perf_counter() - t_sample  # steps/s measures training only
        manager.save(done, args=_save_args(state, data_iter), force=done == stop)
    manager.wait_until_finished()
    manager.close()
    if main:
        log.close()
    return state


def main(argv):
    del argv
    from absl import flags, logging  # noqa: PLC0415  (flags are defined in __main__ only)
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
    f = flags.FLAGS
    sharding.initialize(f.multihost)
    os.makedirs(f.workdir, exist_ok=True)
    train(f.config, f.workdir)
    if f.export:
        export_model(f.workdir, f.export, f.export_step)


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None, "a configs/*.py file", lock_config=True)
    flags.DEFINE_string("workdir", None, "checkpoints and metrics; training resumes from here")
    flags.DEFINE_bool("multihost", None, "join a multi-host job (default: detected from the environment)")
    flags.DEFINE_string("export", None, "after training, write config + EMA parameters here (train.export_model)")
    flags.DEFINE_integer("export_step", None, "the checkpoint step to export (default: the newest)")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
