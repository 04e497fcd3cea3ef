"""The shipped Stage-2 model: tiny_multi_view's network trained longer on more varied data.

Same network as `tiny_multi_view` (d 128, 3 layers, V = 4, T = 64); the store has 3× the renders
per clip, every other render mirrored, motions replayed at 0.8–1.25× speed, and input cameras
drawn from the "Internet video" mix or a slow orbit. Commands in docs/results.md.
"""
import os

from anylift_jax.data.build import load_config


def get_config(arg=None):
    c = load_config(os.path.join(os.path.dirname(__file__), "tiny_multi_view.py"))
    del arg
    c.data.update(renders_per_clip=48, mirror=True, speed_range=(0.8, 1.25), camera="internet,orbit")
    c.train.update(num_steps=3000, checkpoint_every=500)
    c.optim.update(warmup_steps=100)
    return c
