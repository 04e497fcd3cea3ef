"""Stage-2 HOI data (Sec. 2.2): the windows and camera rings of `mocap_multi_view`, the motions
interacting with a scripted object (`anylift_jax.hoi.synth`: a box carried or pushed), each view
holding K' = 17 + M keypoints (the box's M = 8 corners after the body joints). The input view sees
the object as a tracker would (noise, self-hidden corners score 0), the ring views see all of it.

One object category per store and model, as in the paper: for another category, set
`object_category` (a file stem of anylift_jax/assets/objects/) and `root` in a copy of this file.

Build:  python -m anylift_jax.data.build --config configs/data/hoi_multi_view.py --out data/hoi_multi_view
"""
import os

from anylift_jax import config as config_lib


def get_config():
    config = config_lib.load(os.path.join(os.path.dirname(__file__), "mocap_multi_view.py"))
    config.data.update(root="data/hoi_multi_view", object_category="box")
    return config
