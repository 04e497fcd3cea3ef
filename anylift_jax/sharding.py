"""Device mesh and data-parallel shardings: one code path for 1 CPU, 1 GPU or a multi-host slice."""
import os

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


def _multi_host_environment():
    """True when the environment describes a job of several processes (see launch/README.md)."""
    env = os.environ
    return ("ANYLIFT_COORDINATOR" in env or int(env.get("SLURM_NTASKS", "1")) > 1
            or "," in env.get("TPU_WORKER_HOSTNAMES", ""))


def initialize(multi_host=None):
    """Join the multi-host job. `multi_host` None: detect it from the environment.

    ANYLIFT_COORDINATOR (host:port), ANYLIFT_NUM_PROCESSES and ANYLIFT_PROCESS_ID name the job
    explicitly; otherwise `jax.distributed.initialize()` reads Cloud TPU or SLURM settings itself.
    """
    if multi_host is None:
        multi_host = _multi_host_environment()
    if not multi_host:
        return
    env = os.environ
    if "ANYLIFT_COORDINATOR" in env:
        jax.distributed.initialize(coordinator_address=env["ANYLIFT_COORDINATOR"],
                                   num_processes=int(env["ANYLIFT_NUM_PROCESSES"]),
                                   process_id=int(env["ANYLIFT_PROCESS_ID"]))
    else:
        jax.distributed.initialize()


def make_mesh(devices=None):
    """1-D mesh over `devices` (default: every device of every host), axis 'data'.

    Programs whose hosts work on disjoint inputs without talking to each other (lifting) pass
    `jax.local_devices()`: their jitted steps then need no other process.

    Axis type Auto: shardings are set at the jit boundary (batch on 'data', state replicated) and
    propagated by the compiler, so the models' reshapes between view-major and frame-major
    layouts need no sharding annotations.
    """
    devices = jax.devices() if devices is None else devices
    return jax.make_mesh((len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def replicated(mesh):
    return NamedSharding(mesh, P())


def data_sharded(mesh):
    """Leading (batch) axis split over 'data'."""
    return NamedSharding(mesh, P("data"))


def shard_batch(batch, mesh):
    """This host's part of the batch (dict of numpy arrays, leading axis = local batch) -> global arrays."""
    sharding = data_sharded(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
