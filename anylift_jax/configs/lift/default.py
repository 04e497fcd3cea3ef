"""Batch lifting with the shipped Stage-2 model: `python -m anylift_jax.lift --input A --output O`.

The DDIM steps are the model's (`diffusion.sample_steps` of its config.json: 5 for the shipped
models, configs/multi_view.py says why). The stages and their order: `anylift_jax.lifting.pipeline`.
"""
import ml_collections

from anylift_jax import views


def get_config(arg=None):
    del arg
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Every value was chosen on the validation benchmark (`python -m anylift_jax.benchmark --split
    # val --ablate`); the on/off table and the sweeps are in docs/results.md, "Lifting steps on
    # validation". The steps run in the order listed in `lifting.depth.depth_steps`.
    c.lift = dict(
        batch_size=8,  # windows per network batch (rounded up to a multiple of the devices)
        # Frame rate of the model's training motion: clips at other rates are lifted resampled to
        # it and their outputs resampled back (lifting.frames.resampled).
        fps=30.0,
        clips_per_batch=16,  # clips lifted (and body-fitted) together
        # Frames shared by consecutive windows of long clips, cross-faded: each frame is lifted in
        # about length / (length − overlap) windows.
        overlap=48,
        score_threshold=views.SCORE_THRESHOLD,  # detector confidence below which a keypoint is missing
        # Triangulation weight of a generated view's keypoint relative to a detected one of
        # confidence 1: the input view is observed, the others are samples.
        generated_view_weight=0.1,
        # Also lift each clip's mirror image (lifting.frames.mirrored) and average the two triangulations:
        # twice the network cost; models with object keypoints (HOI) lift once.
        mirror_average=True,
        # Replace each DDIM step's generated views by the projection of their triangulation
        # (lifting.sampling.consistent).
        consistent_views=True,
        smooth_sigma=1.5,  # Gaussian temporal smoothing of the triangulated keypoints, frames (0: off)
        median_size=5,  # frames of the median filter before that smoothing
        # Depth from the body's constant size (lifting.depth.constant_size_depth): bone lengths,
        # weighted by (1 - cos² to the input ray)^in_plane_power towards bones across the rays,
        # smoothed over size_sigma frames; the clip's size blended with the default Anny body's
        # by the exponent size_prior_weight (0: the triangulated size, 1: the prior's).
        constant_size=True,
        size_sigma=5.0,
        size_prior_weight=0.5,
        in_plane_power=4,
        # Then the depth profile from planted feet (lifting.depth.planted_feet_depth): an ankle is
        # planted below planted_speed m/s within planted_height m of the clip's low ankle height;
        # standard deviations of a planted ankle's step (m), of a frame's depth factor from 1 and
        # of its second difference per frame.
        planted_feet=True,
        planted_speed=0.9,
        planted_height=0.1,
        planted_std=0.03,
        scale_std=0.1,
        scale_bend_std=0.003,
        # Then the mid-hip's depth along the input rays from its world track smoothed over this
        # many frames (lifting.depth.track_depth; 0: off).
        track_sigma=10.0,
        # Last, joints moved onto their detections' input rays (lifting.depth.on_input_rays), the
        # move smoothed over ray_sigma frames and skipped where the smoothed detection indicator
        # is below min_ray_score.
        on_input_rays=True,
        ray_sigma=1.5,
        min_ray_score=0.1,
        # Object-pose weight of an object keypoint the input view does not observe (observed: 1).
        hidden_object_weight=1e-3,
        fit_body=True,  # fit the body model and output its keypoints and parameters
        fit_bucket=64,  # clips are padded to a multiple of this many frames for the fit
    )
    c.body = dict(name="anny", path=None)  # 'smpl' with path=<your SMPL .pkl/.npz>
    # The body fit (`body.fit.FitConfig`): Adam iterations per stage (orientation and translation;
    # + pose; + shape), learning rate, loss weights, the robust scale and weight of the input view.
    c.fit = dict(iters=(40, 160, 100), lr=0.03, pose_prior="default", w_pose=1e-5, w_gmm=3e-5, vposer=None,
                 w_latent=1e-5, w_shape=1e-5, w_smooth_pose=1e-4, w_smooth_transl=1e-2, robust_sigma=0.1,
                 w_view=1.0, floor_quantile=0.1)
    # The quality flag (lifting.quality): scales of the limb-length variation and of the depth
    # shift of the steps, and the clip quality below which a clip is flagged (about 15 % of the
    # validation clips; docs/results.md, "Quality flag").
    c.quality = dict(bone_scale=0.3, shift_scale=0.5, flag_below=0.56)
    return ml_collections.ConfigDict(c)
