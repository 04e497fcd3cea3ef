"""Single-view (Stage-1) denoiser: `configs/single_view.py:tiny|paper|SLICE`.

- tiny: d 64, 2 layers, T = 32 on the shipped mocap seen through random moving cameras; trains on
  a CPU in minutes.
- paper (default): MVLift's sizes (d 512, 4 post-LN layers, 4 heads x 256, FFN 512, T = 120),
  Adam 2e-4, batch 32, EMA 0.995, 600 k steps: the defaults of `train.default_config`.
- SLICE, a TPU slice in `BATCH` (launch/README.md): paper sizes at pod scale. The global batch
  (`data.batch_size`, split over every device of every host) grows with the slice, the learning
  rate with sqrt(batch) from the paper's 2e-4 at 32, and the step count shrinks so that the
  examples seen stay the paper's (600 k steps x 32); bfloat16 activations.
"""
import math

from anylift_jax.train import default_config

# Global batch per slice: 16 examples per chip.
BATCH = {"v5p-8": 64, "v5p-32": 256, "v5p-64": 512, "v5p-128": 1024, "v6e-64": 1024, "v6e-256": 4096}


def get_config(arg="paper"):
    c = default_config()
    if arg == "paper":
        return c
    if arg == "tiny":
        c.model.update(d_model=64, num_layers=2, num_heads=2, head_dim=32, ffn_dim=128, dropout=0.0)
        c.data.update(batch_size=16, num_frames=32)
        c.diffusion.sample_steps = 20
        c.optim.update(lr=1e-3, warmup_steps=50)
        c.train.update(num_steps=2000, log_every=50, checkpoint_every=500)
        return c
    if arg not in BATCH:
        raise ValueError(f"single_view.py: unknown variant {arg!r} (tiny, paper, {', '.join(BATCH)})")
    batch = BATCH[arg]
    c.data.batch_size = batch
    c.optim.lr = 2e-4 * math.sqrt(batch / 32)
    c.train.num_steps = 600_000 * 32 // batch
    c.optim.warmup_steps = max(1000 * 32 // batch, 100)
    c.model.dtype = "bfloat16"
    return c
