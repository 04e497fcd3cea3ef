"""Stage-2 multi-view model at MVLift's sizes on the motion corpus: what a GPU or TPU run uses.

d 512, 4 layers, 4 heads × 256, T = 120, V = 4, batch 32, Adam 2e-4, EMA 0.995, 50 k steps (the
paper's Stage-2 schedule) on the corpus store of `corpus_multi_view` with 4× its renders.
On 2 CPU cores one step takes seconds; the shipped CPU model is `corpus_multi_view`.

    python -m anylift_jax.data.build --config configs/paper_multi_view.py --out data/corpus_mv_paper
    python -m anylift_jax.train --config configs/paper_multi_view.py --workdir runs/paper_mv
"""
import os

from anylift_jax.data.build import load_config
from anylift_jax.train import default_config


def get_config(arg=None):
    del arg
    c = default_config()
    c.model.update(name="multi_view", num_views=4)
    c.data = load_config(os.path.join(os.path.dirname(__file__), "corpus_multi_view.py")).data
    c.data.update(root="data/corpus_mv_paper", batch_size=32, num_frames=120, renders_per_clip=64)
    c.diffusion.sample_steps = 5
    c.train.update(num_steps=50_000, checkpoint_every=5000)
    return c
