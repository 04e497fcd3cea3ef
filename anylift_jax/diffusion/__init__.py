"""Diffusion on decomposed 2D keypoints: schedules and q(X_n|X_0) (Eq. 1), losses (Eq. 2-4), samplers."""
