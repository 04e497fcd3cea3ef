"""Tiny single-view model on shipped mocap projections: trains on a CPU in minutes."""
from anylift_jax.train import default_config


def get_config(arg=None):
    del arg
    c = default_config()
    c.model.update(d_model=64, num_layers=2, num_heads=2, head_dim=32, ffn_dim=128, dropout=0.0)
    c.data.update(batch_size=16, num_frames=32)
    c.diffusion.sample_steps = 20
    c.optim.update(lr=1e-3, warmup_steps=50)
    c.train.update(num_steps=2000, log_every=50, checkpoint_every=500)
    return c
