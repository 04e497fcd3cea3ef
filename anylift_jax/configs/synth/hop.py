"""Stage 1 on a category the prior never saw in 3D: the shipped `amp_humanoid_hop` (held out), seen
only through front-facing "Internet video" cameras with detector noise; the prior's X^proj source
is the 3D mocap of the other (TRAIN) categories. Small enough for a CPU: a tiny prior (a few
minutes), T = 32, a few hundred SDS iterations.

Run:       python -m anylift_jax.synthesize --config configs/synth/hop.py --workdir DIR
Evaluate:  python -m anylift_jax.synthesize --config configs/synth/hop.py --workdir DIR --evaluate
"""
import ml_collections

from anylift_jax import synthesize
from anylift_jax.data import mocap
from anylift_jax.train import default_config


def get_config(arg=None):
    del arg
    c = ml_collections.ConfigDict()
    c.seed = 0
    # archive: a keypoint archive folder; '' renders `renders` clips of the mocap `category`.
    c.inputs = dict(archive="", category="amp_humanoid_hop", renders=8, camera="internet",
                    image_size=(1280, 720), fov_range=(45.0, 75.0),
                    noise=dict(sigma=0.02, score_width=0.05, dropout=0.02, swap=0.005),
                    score_threshold=0.3)
    # The Stage-1 prior: a `train` config; its data.archive is filled in by the program.
    p = default_config()
    p.model.update(d_model=64, num_layers=2, num_heads=2, head_dim=32, ffn_dim=128, dropout=0.0)
    p.data = dict(name=synthesize.PRIOR_SOURCE, archive="", batch_size=32, num_frames=32,
                  clips=tuple(n for n in mocap.TRAIN if n != c.inputs.category), proj_fraction=0.5,
                  epoch_size=100_000, views=6, ring_partner_prob=0.5, epipole_range=3.0,
                  occlusion_prob=0.1, score_threshold=0.3)
    p.diffusion.sample_steps = 20
    p.optim.update(lr=1e-3, warmup_steps=100)
    p.train.update(num_steps=4000, log_every=100, checkpoint_every=1000)
    c.prior = p
    c.prior_dir = ""  # a finished prior's workdir to reuse instead of DIR/prior
    # V views = the input + V − 1 ring views at 360°/V (MVLift: 6); clips_per_batch windows per jit
    # call (rounded up to a multiple of the devices).
    c.sds = dict(views=6, iterations=400, learning_rate=2e-2, line_weight=10.0, n_min=20, n_max=980,
                 anneal_floor=1.0, init="zeros", ring_weight=1.0, clips_per_batch=48)
    c.fit = dict(enabled=True, body="anny", path=None)
    # Windows are rejected above these: model-space reprojection error (fraction of the frame-0
    # person height) and the mean over limbs of the bone-length standard deviation (mm).
    c.reject = dict(max_error=0.05, max_bone_std=40.0)
    # The multi-view store: each accepted motion seen by `renders` moving input cameras, each with
    # its ring of `views` cameras; noise-free like configs/data/mocap_multi_view.py.
    c.output = dict(views=4, renders=4, camera="internet", image_size=(1920, 1080), fov_range=(40.0, 75.0),
                    noise=dict(sigma=0.0, score_width=0.05, dropout=0.0, swap=0.0), windows_per_shard=16)
    return c
