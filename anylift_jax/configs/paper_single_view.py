"""Stage-1 single-view model at MVLift's sizes (d 512, 4 post-LN layers, 4 heads × 256, FFN 512, T 120)."""
from anylift_jax.train import default_config


def get_config(arg=None):
    del arg
    return default_config()  # the defaults are the paper preset: Adam 2e-4, batch 32, EMA 0.995, 600k steps
