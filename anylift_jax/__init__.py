"""AnyLift in JAX: world-grounded 3D human motion from moving-camera 2D keypoints via 2D diffusion."""
