"""Training data: 3D motion sources, camera trajectories, 2D rendering, model space, stores, loaders.

Data generation (`mocap`, `cameras`, `render2d`) runs in numpy inside the input pipeline, not under jit.
"""
