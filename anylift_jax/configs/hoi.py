"""HOI multi-view model (Sec. 2.2) on the HOI Stage-2 store (configs/data/hoi_multi_view.py):
K' = 17 body + M object keypoints, object keypoints of the input view randomly hidden in training.

`--config=configs/hoi.py:CATEGORY` names the object category (default box); M is its number of
keypoints. The store must hold that category (build it from a data config that names it).
"""
import os

from anylift_jax.data.build import load_config
from anylift_jax.hoi import load_category
from anylift_jax.train import default_config


def get_config(arg=None):
    category = arg or "box"
    m = load_category(category).num_keypoints
    c = default_config()
    c.model.update(name="multi_view", num_views=4, num_keypoints=17 + m, num_object_keypoints=m)
    c.data = load_config(os.path.join(os.path.dirname(__file__), "data", "hoi_multi_view.py")).data
    c.data.object_category = category
    c.train.update(num_steps=50_000, object_drop_prob=0.3)
    return c
