"""Paper-size single-view model at pod scale: `get_config("v5p-64")` etc. (launch/README.md).

The global batch is `data.batch_size` (split over every device of every host); it grows with the
slice, the learning rate with √batch from the paper's (2e-4 at 32) and the step count shrinks so
that the number of examples seen stays the paper's (600 k steps × 32).
"""
import math

from anylift_jax.train import default_config

# Global batch per slice: 16 examples per chip.
BATCH = {"v5p-8": 64, "v5p-32": 256, "v5p-64": 512, "v5p-128": 1024, "v6e-64": 1024, "v6e-256": 4096}


def get_config(arg="v5p-32"):
    c = default_config()
    batch = BATCH[arg]
    c.data.batch_size = batch
    c.optim.lr = 2e-4 * math.sqrt(batch / 32)
    c.train.num_steps = 600_000 * 32 // batch
    c.optim.warmup_steps = max(1000 * 32 // batch, 100)
    c.model.dtype = "bfloat16"
    return c
