"""Training logs written by process 0: `metrics.jsonl`, TensorBoard event files and sample sheets.

    <workdir>/metrics.jsonl         one JSON object per logged step (every scalar, and "step")
    <workdir>/tb/                   TensorBoard event files (tensorboardX): the same scalars, tags = keys;
                                    image "samples" = the sample sheets
    <workdir>/samples/step_<N>.png  sample sheet at step N: generated vs real 2D skeleton sequences

A run resumed from the checkpoint of step S starts its event file with a purge at S + 1, so
TensorBoard drops the events that an interrupted earlier run wrote after step S (the resumed run
repeats those steps; its first is S + 1).
"""
import json
import os

import numpy as np
from PIL import Image
from tensorboardX import SummaryWriter

from anylift_jax import skeleton, viz
from anylift_jax.data import normalize

SHEET_ROWS = 8  # skeleton sequences per sample sheet: clips × views
SHEET_FRAMES = 4


def sheet_clips(config):
    """How many clips of a batch a sample sheet shows (every view of each)."""
    views = config.model.num_views if config.model.name == "multi_view" else 1
    return max(1, SHEET_ROWS // views)


def sample_sheet(batch, generated):
    """Sample sheet (H, W, 3) uint8: per clip (and view) the real `batch['x0']` against `generated`.

    batch: a batch (docs/design.md "Batches") of C clips, single view (x0 (C, T, K, 2)) or multi
    view (x0 (C, V, T, K, 2)); generated: samples of x0's shape. Decomposed model space is composed
    to the global 2D motion; only the 17 body joints are drawn (object keypoints of HOI models have
    no root/local decomposition).
    """
    x0, generated = np.asarray(batch["x0"]), np.asarray(generated)
    joint_mask, mask = np.asarray(batch["joint_mask"]), np.asarray(batch["mask"])
    multi_view = x0.ndim == 5
    if not multi_view:
        x0, generated, joint_mask = x0[:, None], generated[:, None], joint_mask[:, None]
    c, v, t = x0.shape[:3]
    k = skeleton.NUM_JOINTS
    real = normalize.compose(x0[..., :k, :]).reshape(c * v, t, k, 2)
    fake = normalize.compose(generated[..., :k, :]).reshape(c * v, t, k, 2)
    visible = (joint_mask[..., :k] * mask[:, None, :, None] > 0).reshape(c * v, t, k)
    labels = [f"clip {i} view {j}" if multi_view else f"clip {i}" for i in range(c) for j in range(v)]
    return viz.skeleton_sheet(real, fake, visible, labels, SHEET_FRAMES)


class TrainLog:
    """Process 0's writer of the files above; `start` is the step the run starts (or resumes) at."""

    def __init__(self, workdir, start):
        self.workdir = workdir
        # The suffix keeps an event file of a run resumed within the same second from overwriting
        # the previous run's (tensorboardX names files by the second).
        self.tb = SummaryWriter(os.path.join(workdir, "tb"), purge_step=start + 1, filename_suffix=f".{start}")

    def scalars(self, metrics):
        """metrics: {'step': N, name: float, …} -> one JSONL line and one TensorBoard scalar per name."""
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(metrics) + "\n")
        for name, value in metrics.items():
            if name != "step":
                self.tb.add_scalar(name, value, metrics["step"])
        self.tb.flush()  # readable while the run goes on, and complete if it dies

    def samples(self, step, image):
        """Sample sheet (H, W, 3) uint8 -> samples/step_<step>.png and TensorBoard image 'samples'."""
        os.makedirs(os.path.join(self.workdir, "samples"), exist_ok=True)
        Image.fromarray(image).save(os.path.join(self.workdir, "samples", f"step_{step}.png"))
        self.tb.add_image("samples", image, step, dataformats="HWC")
        self.tb.flush()

    def close(self):
        self.tb.close()
