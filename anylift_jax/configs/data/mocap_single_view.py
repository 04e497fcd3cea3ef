"""Stage-1 demo data: the shipped mocap TRAIN clips seen by "Internet video" cameras with detector
noise (global source, is_proj = 0), mixed with their local projections X^proj (is_proj = 1).

Build:  python -m anylift_jax.data.build --config configs/data/mocap_single_view.py --out DIR
Load:   config.data.root = DIR; anylift_jax.data.pipeline.make_iterator(config, split="train", …)
"""
import ml_collections


def get_config():
    config = ml_collections.ConfigDict()

    d = config.data = ml_collections.ConfigDict()
    d.kind = "single_view"  # batches of docs/design.md: "single_view" (Stage 1) or "multi_view"
    d.root = "data/mocap_single_view"  # store written by build --out; holds <split>/<source>/
    d.name = "pipeline"  # data.sources.SOURCES key
    d.batch_size = 32  # global batch; each of P hosts yields batch_size / P
    d.num_frames = 120  # T frames per window (30 fps)
    d.views = 4  # views of the Stage-2 ring whose cameras serve as line partners

    # build: what is rendered (seeded by d.seed; the same config rebuilds the same store)
    d.seed = 0
    d.camera = "internet"  # data.cameras.sample_trajectory kind of the global source
    d.image_size = (1920, 1080)  # (width, height) pixels
    d.fov_range = (40.0, 75.0)  # horizontal field of view, degrees, uniform
    d.noise = ml_collections.ConfigDict(  # data.render2d.NoiseConfig of the global source
        dict(sigma=0.02, score_width=0.05, dropout=0.02, swap=0.005))
    d.renders_per_clip = 16  # global renders (camera + noise draws) of each clip
    d.proj_per_clip = 16  # X^proj renders of each clip (noise-free projections)
    d.proj_archive_prob = 0.5  # X^proj camera: a training trajectory (relative to its subject),
    #                            else one of normalize.predefined_trajectories
    d.renders_per_shard = 32  # (clip, render) renders per store shard

    # load: mixing and on-the-fly augmentation
    d.proj_ratio = 0.3  # fraction of X^proj elements in the stream
    d.ring_partner_prob = 0.5  # line partner: a ring camera, else an epipole uniform in ±epipole_range
    d.epipole_range = 3.0  # model units (MVLift: [-3, 3]²)
    d.occlusion_prob = 0.1  # probability of a random occlusion (joints hidden over a span of frames)
    d.num_threads = 4  # grain read threads per process
    d.prefetch_batches = 16  # grain prefetch buffer (elements)
    d.num_workers = 0  # > 0: that many grain worker processes (mp_prefetch)
    return config
