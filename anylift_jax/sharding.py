"""Device mesh and data-parallel shardings: one code path for 1 CPU, 1 GPU or a multi-host slice."""
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


def initialize(multi_host):
    """Join the multi-host job (`jax.distributed.initialize()` reads the cluster from the environment)."""
    if multi_host:
        jax.distributed.initialize()


def make_mesh():
    """1-D mesh over every device of every host, axis 'data'.

    Axis type Auto: shardings are set at the jit boundary (batch on 'data', state replicated) and
    propagated by the compiler, so the models' reshapes between view-major and frame-major
    layouts need no sharding annotations.
    """
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh):
    return NamedSharding(mesh, P())


def data_sharded(mesh):
    """Leading (batch) axis split over 'data'."""
    return NamedSharding(mesh, P("data"))


def shard_batch(batch, mesh):
    """This host's part of the batch (dict of numpy arrays, leading axis = local batch) -> global arrays."""
    sharding = data_sharded(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
