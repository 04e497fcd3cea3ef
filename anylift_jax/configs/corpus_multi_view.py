"""Stage-2 model on the motion corpus (`anylift_jax.data.corpus`, train split): the shipped lifter.

Same network family as `small_multi_view`, trained on 100 real clips of six motion categories
(locomotion, acrobatics, martial arts, dance, ground, sports) of about 20 subjects and four rigs,
with mirror, retiming and the camera families; dance windows are thinned (its clips are 70 % of
the frames). Chosen on the validation benchmark (docs/results.md "Generalisation").

    python -m anylift_jax.data.build --config configs/corpus_multi_view.py --out data/corpus_mv
    python -m anylift_jax.train --config configs/corpus_multi_view.py --workdir runs/corpus_mv
"""
import os

from anylift_jax.data.build import load_config


def get_config(arg=None):
    del arg
    c = load_config(os.path.join(os.path.dirname(__file__), "small_multi_view.py"))
    c.data.update(root="data/corpus_mv", corpus=True, renders_per_clip=16, window_stride=8,
                  category_stride={"dance": 4}, renders_per_shard=8, camera="internet,orbit")
    c.train.update(num_steps=6000, checkpoint_every=1000, max_to_keep=6, sample_every=0)
    c.optim.update(warmup_steps=200)
    return c
