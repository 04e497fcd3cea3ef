"""Stage-2 demo data: the shipped mocap TRAIN clips seen by a moving "Internet video" camera
(view 0, the input view) and by V - 1 cameras completing a ring of V cameras 90° apart
(for V = 4) around the pelvis at the input camera's frame-0 distance and height, translated with
the pelvis track estimated from the input view (docs/design.md "Several views"). Records are
windows of T frames, so that frame 0 of the ring and of the model coincide. Noise-free reprojections, as the paper's Stage-2 training data (Sec. 2.1).

Build:  python -m anylift_jax.data.build --config configs/data/mocap_multi_view.py --out DIR
"""
import ml_collections


def get_config():
    config = ml_collections.ConfigDict()

    d = config.data = ml_collections.ConfigDict()
    d.kind = "multi_view"
    d.root = "data/mocap_multi_view"  # store written by build --out; holds <split>/multiview/
    d.name = "pipeline"  # data.sources.SOURCES key
    d.batch_size = 32  # global batch; each of P hosts yields batch_size / P
    d.num_frames = 120  # T frames per window (30 fps)
    d.views = 4  # V, view 0 the input view

    # build
    d.seed = 0
    d.camera = "internet"  # data.cameras.sample_trajectory kind of the input view
    d.image_size = (1920, 1080)
    d.fov_range = (40.0, 75.0)
    d.noise = ml_collections.ConfigDict(dict(sigma=0.0, score_width=0.05, dropout=0.0, swap=0.0))
    # the input view as a detector sees it (render2d.NoiseConfig defaults)
    d.input_noise = ml_collections.ConfigDict(dict(sigma=0.02, score_width=0.05, dropout=0.02, swap=0.005))
    d.renders_per_clip = 16  # moving-camera renders of each clip
    d.window_stride = 30  # records are windows of `num_frames` frames starting every window_stride
    #                       frames, each with its own ring at its first frame (never cropped)
    d.renders_per_shard = 32  # (clip, render) renders per store shard

    # load
    d.occlusion_prob = 0.1
    d.num_threads = 4
    d.prefetch_batches = 16
    d.num_workers = 0
    return config
