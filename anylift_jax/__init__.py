"""AnyLift in JAX: world-grounded 3D human motion from moving-camera 2D keypoints via 2D diffusion."""
from pathlib import Path

# The shipped configs live in the package (a plain install has them); `configs/` at the top of a
# checkout points here.
CONFIGS = Path(__file__).resolve().parent / "configs"
