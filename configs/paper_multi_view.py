"""Stage-2 multi-view model: V = 4 views, MVLift's sizes, 50k steps on synthesised multi-view data."""
from anylift_jax.train import default_config


def get_config(arg=None):
    del arg
    c = default_config()
    c.model.update(name="multi_view", num_views=4)
    c.data.name = "pipeline"
    c.train.num_steps = 50_000
    return c
