"""Batched, jit-able, differentiable 3D geometry: rotations, cameras, epipolar lines, alignment, triangulation."""
