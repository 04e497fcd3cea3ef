"""The training data sources, by `config.data.name`: each returns this host's iterator of batches
(dicts of float32 numpy arrays, docs/design.md "Batches")."""
from anylift_jax.data import pipeline, projection, stage1

SOURCES = {
    "mocap_projection": projection.iterator,  # shipped mocap through random moving cameras
    "pipeline": pipeline.make_iterator,  # a store written by `data.build`
    "stage1_hybrid": stage1.prior_iterator,  # Stage-1 prior: an archive + X^proj
}


def make_iterator(config, *, process_index, process_count, seed):
    """This host's batch iterator for `config.data.name`."""
    if config.data.name not in SOURCES:
        raise ValueError(f"config.data.name: unknown data source {config.data.name!r} ({', '.join(SOURCES)})")
    return SOURCES[config.data.name](config, process_index=process_index, process_count=process_count, seed=seed)
