"""Stage-2 multi-view denoiser (V = 4): `configs/multi_view.py:tiny|small|corpus|paper`.

- tiny: d 128, 3 layers, T = 64 on the store of the shipped mocap clips; CPU minutes (the demo).
      python -m anylift_jax.data.build --config configs/data/mocap_multi_view.py --out data/mocap_multi_view
- small: tiny's network trained longer on 3x the renders, mirrored, retimed (0.8-1.25x), input
  cameras from the "Internet video" mix or a slow orbit.
- corpus (default): small on the motion corpus' train split (`anylift_jax.data.corpus`: six
  categories, about 20 subjects, four rigs), dance windows thinned 4x: the shipped lifter,
  chosen on the validation benchmark (docs/results.md "Generalisation").
      python -m anylift_jax.data.build --config configs/multi_view.py:corpus --out data/corpus_mv
      python -m anylift_jax.train --config configs/multi_view.py:corpus --workdir runs/corpus_mv
- paper: MVLift's sizes (d 512, 4 layers, 4 heads x 256, T = 120, batch 32, Adam 2e-4, EMA 0.995,
  the paper's 50 k Stage-2 steps) on the corpus store with 4x the renders: what a GPU or TPU run
  uses; on 2 CPU cores one step takes seconds.
"""
import os

from anylift_jax import config as config_lib
from anylift_jax.train import default_config


def get_config(arg="corpus"):
    c = default_config()
    c.model.update(name="multi_view", num_views=4)
    c.data = config_lib.load(os.path.join(os.path.dirname(__file__), "data", "mocap_multi_view.py")).data
    # DDIM steps of lifting: the input view pins the generated ones down, so 5 steps are within
    # 1 mm of 20 or 50 (docs/results.md, "Before the corpus").
    c.diffusion.sample_steps = 5
    if arg == "paper":
        corpus = get_config("corpus").data
        c.data = corpus
        c.data.update(root="data/corpus_mv_paper", batch_size=32, num_frames=120, renders_per_clip=64)
        c.train.update(num_steps=50_000, checkpoint_every=5000)
        return c
    c.model.update(d_model=128, num_layers=3, num_heads=4, head_dim=32, ffn_dim=256, dropout=0.0)
    c.data.update(batch_size=16, num_frames=64, window_stride=8)
    c.optim.update(lr=1e-3, warmup_steps=50)
    c.train.update(num_steps=2000, log_every=50, checkpoint_every=500)
    if arg == "tiny":
        return c
    c.data.update(renders_per_clip=48, mirror=True, speed_range=(0.8, 1.25), camera="internet,orbit")
    c.train.update(num_steps=3000, checkpoint_every=500)
    c.optim.update(warmup_steps=100)
    if arg == "small":
        return c
    if arg != "corpus":
        raise ValueError(f"multi_view.py: unknown variant {arg!r} (tiny, small, corpus, paper)")
    c.data.update(root="data/corpus_mv", corpus=True, renders_per_clip=16, window_stride=8,
                  category_stride={"dance": 4}, renders_per_shard=8, camera="internet,orbit")
    c.train.update(num_steps=6000, checkpoint_every=1000, max_to_keep=6, sample_every=0)
    c.optim.update(warmup_steps=200)
    return c
