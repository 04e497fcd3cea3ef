"""Lifting single-view keypoint archives to world-grounded 3D with the Stage-2 model (Sec. 2.2).

Modules in the order the data flows (`pipeline` runs them): `frames` (upright world, mirror
image), `windows` (model-length windows, shared with Stage-1 synthesis), `sampling` (the virtual
ring, DDIM with the input view inpainted, consistent views, triangulation), `depth` (the steps
after triangulation), `body` (the body fit), `objects` (HOI object poses), `quality` (a per-frame
confidence and a clip score), `pipeline` (a group of clips through all of them; archive in, one
`<clip>.npz` out per clip). The program is `anylift_jax.lift`.
"""
import os

from anylift_jax import CONFIGS
from anylift_jax.lifting.pipeline import lift_archive, lift_group

_MODELS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "models")
# The Stage-2 models the package ships (trained by the commands in docs/results.md).
SHIPPED_MODEL = os.path.join(_MODELS, "stage2_corpus")
SHIPPED_HOI_MODEL = os.path.join(_MODELS, "hoi_tiny")
DEFAULT_CONFIG = str(CONFIGS / "lift" / "default.py")

__all__ = ["DEFAULT_CONFIG", "SHIPPED_HOI_MODEL", "SHIPPED_MODEL", "lift_archive", "lift_group"]
