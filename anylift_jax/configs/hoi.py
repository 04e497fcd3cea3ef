"""HOI multi-view denoiser (Sec. 2.2): `configs/hoi.py:tiny|paper[,CATEGORY]`.

K' = 17 body + M object keypoints (M of the object category, default box), the object keypoints
of the input view randomly hidden in training, on an HOI Stage-2 store (configs/data/
hoi_multi_view.py; the store must hold that category).

- tiny: the network and windows of `multi_view.py:small`, 1000 steps; CPU minutes, the numbers it
  gives are in docs/results.md ("HOI").
      python -m anylift_jax.data.build --config configs/hoi.py:tiny --out data/hoi_multi_view
      python -m anylift_jax.train --config configs/hoi.py:tiny --config.data.root=data/hoi_multi_view \
          --workdir runs/tiny_hoi --export anylift_jax/assets/models/hoi_tiny
- paper (default): MVLift's sizes, 50 k steps.
"""
import os

from anylift_jax import config as config_lib
from anylift_jax.hoi import load_category
from anylift_jax.train import default_config

HERE = os.path.dirname(__file__)


def get_config(arg="paper"):
    size, _, category = arg.partition(",")
    category = category or "box"
    m = load_category(category).num_keypoints
    if size == "tiny":
        c = config_lib.load(os.path.join(HERE, "multi_view.py") + ":small")
        small = c.data
        c.data = config_lib.load(os.path.join(HERE, "data", "hoi_multi_view.py")).data
        c.data.update(batch_size=small.batch_size, num_frames=small.num_frames, window_stride=small.window_stride,
                      renders_per_clip=16, mirror=True, speed_range=(0.8, 1.25))
        c.train.update(num_steps=1000)
    elif size == "paper":
        c = default_config()
        c.model.update(name="multi_view", num_views=4)
        c.data = config_lib.load(os.path.join(HERE, "data", "hoi_multi_view.py")).data
        c.train.update(num_steps=50_000)
    else:
        raise ValueError(f"hoi.py: unknown variant {arg!r} (tiny or paper, then ',CATEGORY')")
    c.model.update(num_keypoints=17 + m, num_object_keypoints=m)
    c.data.object_category = category
    c.train.update(object_drop_prob=0.3)
    return c
