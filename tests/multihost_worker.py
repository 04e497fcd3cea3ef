"""One process of the multi-host test (tests/multihost_test.py): `python tests/multihost_worker.py WORKDIR`.

The test starts several of these with ANYLIFT_COORDINATOR / ANYLIFT_NUM_PROCESSES /
ANYLIFT_PROCESS_ID and XLA_FLAGS (fake CPU devices) set, so `sharding.initialize()` joins the job
exactly as the launch scripts make it do. Each process:
1. writes the global batch its host part of step 0 becomes (`shard_batch`, gathered);
2. trains `train_config()` to step 2 (interruption), then resumes to `num_steps` from the
   checkpoint, and writes its final state to `WORKDIR/state_<process>.npz`;
3. lifts `WORKDIR/archive` into `WORKDIR/lifted` with a randomly initialised `lift_model_config()`
   and writes the summary to `WORKDIR/lift_<process>.json`.
"""
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def train_config():
    """configs/single_view.py:tiny, smaller still (one layer, batch 8 × 16 frames): seconds to compile."""
    from anylift_jax import config as config_lib  # noqa: PLC0415

    c = config_lib.load(f"{ROOT}/configs/single_view.py:tiny")
    c.model.num_layers = 1
    c.data.update(batch_size=8, num_frames=16)
    c.optim.warmup_steps = 1  # nonzero learning rate from step 1, so parameters move
    c.train.update(num_steps=4, checkpoint_every=2, log_every=2)
    return c


def lift_model_config():
    """A tiny Stage-2 (multi-view) model config: 2 views, 16 frames, 2 DDIM steps."""
    c = train_config()
    c.model.update(name="multi_view", num_views=2, d_model=32, head_dim=16)
    c.diffusion.sample_steps = 2
    return c


def lift_config():
    """configs/lift/default.py without the body fit (keypoints only), 8-window batches."""
    from anylift_jax import config as config_lib  # noqa: PLC0415

    c = config_lib.load(ROOT / "configs" / "lift" / "default.py")
    c.lift.update(fit_body=False, batch_size=8, overlap=4)
    return c


def flat_state(state):
    """{path: numpy array} of a replicated train state (readable on every process)."""
    import jax  # noqa: PLC0415

    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(p): np.asarray(jax.device_get(x)) for p, x in leaves}


def main(workdir):
    import jax  # noqa: PLC0415
    from jax.experimental import multihost_utils  # noqa: PLC0415

    from anylift_jax import lifting, sharding, train  # noqa: PLC0415

    sharding.initialize()
    rank, workdir = jax.process_index(), Path(workdir)
    mesh = sharding.make_mesh()
    config = train_config()

    local = next(train.make_iterator(config, process_index=rank, process_count=jax.process_count()))
    global_batch = multihost_utils.process_allgather(sharding.shard_batch(local, mesh), tiled=True)
    if rank == 0:
        np.savez(workdir / "global_batch.npz", **global_batch)

    train.train(config, str(workdir / "train"), stop_at=2)
    state = train.train(config, str(workdir / "train"))
    np.savez(workdir / f"state_{rank}.npz", **flat_state(state))

    lift_model = lift_model_config()
    graphdef, rest, lift_state, _ = train.init_state(lift_model, mesh)
    summary = lifting.lift_archive(lift_config(), (lift_model, graphdef, rest, lift_state["ema"]),
                                workdir / "archive", workdir / "lifted", progress=False)
    (workdir / f"lift_{rank}.json").write_text(json.dumps(summary))
    multihost_utils.sync_global_devices("done")


if __name__ == "__main__":
    main(sys.argv[1])
