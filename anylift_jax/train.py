"""Train a denoiser: `python -m anylift_jax.train --config configs/<x>.py[:variant] [--config.key=value …] --workdir DIR`.

Sections: config, data, model/optimiser state, train step, sampling, loop (checkpoints: `checkpoints`). One code
path for one CPU, one GPU or a multi-host slice: a 1-D 'data' mesh over all devices, batches
sharded on it, parameters, optimiser state and EMA replicated, a jitted step with donated state.
Resume is automatic from `--workdir/checkpoints`; the step's randomness is a function of the step
number and the data iterator state is checkpointed, so a resumed run continues exactly.
Metrics (loss terms, grad norm, steps/s, examples/s) go to stdout (tqdm), `--workdir/metrics.jsonl` and
TensorBoard event files in `--workdir/tb`; every `train.sample_every` steps the EMA model samples a
fixed batch and a sheet of generated vs real 2D skeletons goes to `--workdir/samples/step_<N>.png`
and TensorBoard (`anylift_jax.train_log`).
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from absl import logging as absl_logging
from flax import nnx

from anylift_jax import config as config_lib
from anylift_jax import checkpoints, models, sharding
from anylift_jax.data import mocap, sources
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
    # name: a key of data.sources.SOURCES. mocap_projection: shipped mocap through random moving cameras.
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
def make_iterator(config, *, process_index=0, process_count=1, seed=None):
    """This host's batch iterator for `config.data.name` (`data.sources.SOURCES`)."""
    return sources.make_iterator(config, process_index=process_index, process_count=process_count,
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
    run = jax.jit(lambda r, p, b: samplers.sample_model(config, graphdef, r, p, b, jax.random.key(config.seed)), out_shardings=repl)
    return batch, lambda params: np.asarray(run(rest, params, on_mesh).addressable_data(0))


# ------------------------------------------------------------------------------------------- loop
def train(config, workdir, *, stop_at=None):
    """Train until `config.train.num_steps` (or `stop_at`, to simulate an interruption); returns the state."""
    mesh = sharding.make_mesh()
    graphdef, rest, state, tx = init_state(config, mesh)
    data_iter = make_iterator(config, process_index=jax.process_index(), process_count=jax.process_count())
    manager = checkpoints.manager(config, workdir)
    state, data_iter = checkpoints.restore_latest(manager, state, data_iter)
    step_fn = make_train_step(config, graphdef, rest, tx, mesh)
    start, stop = int(state["step"]), min(config.train.num_steps, stop_at or config.train.num_steps)
    main = jax.process_index() == 0
    if main:  # the model's recipe, for `checkpoints.load_model`
        checkpoints.write_config(config, workdir)
    # Imported here: tensorboardX (which imports torch where installed) and matplotlib are for
    # training runs only, not for every user of `default_config`.
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
        manager.save(done, args=checkpoints.save_args(state, data_iter), force=done == stop)
    manager.wait_until_finished()
    manager.close()
    if main:
        log.close()
    return state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_lib.add_argument(parser, help="configs/<x>.py[:variant]")
    parser.add_argument("--workdir", required=True, help="checkpoints and metrics; training resumes from here")
    parser.add_argument("--multihost", action=argparse.BooleanOptionalAction, default=None,
                        help="join a multi-host job (default: detected from the environment)")
    parser.add_argument("--export", default=None,
                        help="after training, write config + EMA parameters here (checkpoints.export_model)")
    parser.add_argument("--export_step", type=int, default=None, help="the checkpoint step to export (default: the newest)")
    args = config_lib.parse(parser, argv)
    absl_logging.set_verbosity(absl_logging.WARNING)  # orbax logs every file operation at INFO
    sharding.initialize(args.multihost)
    os.makedirs(args.workdir, exist_ok=True)
    train(args.config, args.workdir)
    if args.export:
        checkpoints.export_model(args.workdir, args.export, args.export_step)


if __name__ == "__main__":
    main()
