"""Tiny HOI Stage-2 model (box): the network and windows of `small_multi_view` with K' = 17 + 8
keypoints, on the HOI store of the shipped TRAIN motions (configs/data/hoi_multi_view.py). CPU
minutes; the numbers it gives are in docs/results.md ("HOI").

  python -m anylift_jax.data.build --config configs/tiny_hoi.py --out data/hoi_multi_view
  python -m anylift_jax.train --config configs/tiny_hoi.py --config.data.root=data/hoi_multi_view \
      --workdir runs/tiny_hoi --export anylift_jax/assets/models/hoi_tiny
"""
import os

from anylift_jax.data.build import load_config


def get_config(arg=None):
    here = os.path.dirname(__file__)
    c = load_config(os.path.join(here, "small_multi_view.py"))
    hoi = load_config(os.path.join(here, "hoi.py"))  # category box
    c.model.update(num_keypoints=hoi.model.num_keypoints, num_object_keypoints=hoi.model.num_object_keypoints)
    data = c.data
    c.data = hoi.data
    c.data.update(batch_size=data.batch_size, num_frames=data.num_frames, window_stride=data.window_stride,
                  renders_per_clip=16, mirror=True, speed_range=(0.8, 1.25))
    c.train.update(num_steps=1000, object_drop_prob=0.3)
    del arg
    return c
