"""Checkpoints: the training run's orbax checkpoints (resumable state and data iterator) and the
exported model a user lifts with (its config and EMA weights keyed by parameter path).

A training workdir holds `config.json` and `checkpoints/<step>/`; an exported model folder holds
`config.json` and `params.npz`. `load_model` reads either without building an optimiser.
"""
import json
import os

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from anylift_jax import models, sharding

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.npz"


def manager(config, workdir):
    """The orbax CheckpointManager of a training run in `workdir`."""
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=config.train.max_to_keep,
                                             save_interval_steps=config.train.checkpoint_every))


def save_args(state, data_iter):
    """orbax arguments saving the train state and, for a grain iterator, its position."""
    items = {"state": ocp.args.StandardSave(state)}
    if isinstance(data_iter, grain.DatasetIterator):
        items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    return ocp.args.Composite(**items)


def restore_latest(mgr, state, data_iter):
    """(state, data_iter) from the newest checkpoint, or the given ones when there is none."""
    step = mgr.latest_step()
    if step is None:
        return state, data_iter
    items = {"state": ocp.args.StandardRestore(state)}
    if isinstance(data_iter, grain.DatasetIterator):
        items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
    restored = mgr.restore(step, args=ocp.args.Composite(**items))
    return restored["state"], data_iter


def write_config(config, folder):
    with open(os.path.join(folder, CONFIG_FILE), "w") as f:
        f.write(config.to_json_best_effort(indent=2))


def read_config(path):
    try:
        with open(os.path.join(path, CONFIG_FILE)) as f:
            return ml_collections.ConfigDict(json.load(f))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: no readable {CONFIG_FILE}, not a training workdir or exported model ({e})") from e


def by_path(tree):
    """{'cross/0/attn/key/kernel/value': leaf, ...}: a pytree's leaves keyed by parameter path."""
    return {jax.tree_util.keystr(p, simple=True, separator="/"): x
            for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _fill(params, arrays, source):
    """`params` (an nnx.State of abstract leaves) with the leaves of `arrays` {path: array}."""
    want = by_path(params)
    if set(want) != set(arrays):
        missing, extra = sorted(set(want) - set(arrays)), sorted(set(arrays) - set(want))
        raise ValueError(f"{source}: parameters do not match {CONFIG_FILE} (missing {missing[:3]}, extra {extra[:3]})")
    for k, leaf in want.items():
        if tuple(arrays[k].shape) != tuple(leaf.shape):
            raise ValueError(f"{source}: parameter '{k}' has shape {arrays[k].shape}, the config says {leaf.shape}")
    return jax.tree.unflatten(jax.tree.structure(params), [np.asarray(arrays[k]) for k in want])  # want: flatten order


def load_model(path, step=None):
    """(config, graphdef, rest, ema_params) from an exported model folder or a training workdir
    (checkpoint `step`, default the newest); the parameters replicated over all devices.
    Stage-1 synthesis and lifting sample with the EMA parameters."""
    path = os.path.abspath(path)
    config = read_config(path)

    def build():
        return models.build_model(config.model, nnx.Rngs(params=0, dropout=0))

    graphdef, abstract, _ = nnx.split(nnx.eval_shape(build), nnx.Param, ...)
    rest = jax.jit(lambda: nnx.split(build(), nnx.Param, ...)[2])()  # the dropout stream (off when sampling)
    exported = os.path.join(path, PARAMS_FILE)
    if os.path.exists(exported):
        with np.load(exported, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        source = exported
    else:
        mgr = manager(config, path)
        if mgr.latest_step() is None:
            raise ValueError(f"{path}: no checkpoint under {path}/checkpoints and no {PARAMS_FILE}")
        step = mgr.latest_step() if step is None else step
        if step not in mgr.all_steps():
            raise ValueError(f"{path}: no checkpoint of step {step}; have {mgr.all_steps()}")
        restored = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
        mgr.close()
        arrays = {k: np.asarray(v) for k, v in by_path(restored["state"]["ema"]).items()}
        source = f"{path}/checkpoints/{step}"
    params = jax.device_put(_fill(abstract, arrays, source), sharding.replicated(sharding.make_mesh()))
    return config, graphdef, rest, params


def export_model(workdir, out, step=None):
    """Write the config and EMA parameters (only) of checkpoint `step` (default the newest) of a
    training workdir to `out`, for shipping. Every process calls it; process 0 writes."""
    config, _, _, ema = load_model(workdir, step)
    if jax.process_index() != 0:
        return
    os.makedirs(out, exist_ok=True)
    write_config(config, out)
    np.savez(os.path.join(out, PARAMS_FILE), **{k: np.asarray(v) for k, v in by_path(jax.device_get(ema)).items()})
