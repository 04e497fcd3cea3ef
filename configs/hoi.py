"""HOI multi-view model: K' = 17 human + M object keypoints, object keypoints of the input view randomly hidden.

`--config=configs/hoi.py:M` sets the number of object keypoints of the category (default 8, a box's corners).
"""
from anylift_jax.train import default_config


def get_config(arg=None):
    m = int(arg) if arg else 8
    c = default_config()
    c.model.update(name="multi_view", num_views=4, num_keypoints=17 + m, num_object_keypoints=m)
    c.data.name = "pipeline"
    c.train.update(num_steps=50_000, object_drop_prob=0.3)
    return c
