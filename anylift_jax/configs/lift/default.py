"""Batch lifting with the shipped Stage-2 model: `python -m anylift_jax.lift --input A --output O`.

The DDIM steps are the model's (`diffusion.sample_steps` of its config.json: 5 for the shipped
models, configs/tiny_multi_view.py says why).
"""
import ml_collections

from anylift_jax import views


def get_config(arg=None):
    del arg
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Every value was chosen on the validation benchmark (`python -m anylift_jax.benchmark --split
    # val --ablate`); the on/off table and the sweeps are in docs/results.md, "Lifting steps on
    # validation". The steps run in the order listed in `lift.depth_steps`.
    c.lift = dict(
        batch_size=8,  # windows per network batch (rounded up to a multiple of the devices)
        clips_per_batch=16,  # clips lifted (and body-fitted) together
        # Frames shared by consecutive windows of long clips, cross-faded: each frame is lifted in
        # about length / (length − overlap) windows.
        overlap=48,
        score_threshold=views.SCORE_THRESHOLD,  # detector confidence below which a keypoint is missing
        # Triangulation weight of a generated view's keypoint relative to a detected one of
        # confidence 1: the input view is observed, the others are samples.
        generated_view_weight=0.1,
        # Also lift each clip's mirror image (lift.mirrored) and average the two triangulations:
        # twice the network cost; models with object keypoints (HOI) lift once.
        mirror_average=True,
        # Replace each DDIM step's generated views by the projection of their triangulation
        # (lift.consistent).
        consistent_views=True,
        smooth_sigma=1.5,  # Gaussian temporal smoothing of the triangulated keypoints, frames (0: off)
        median_size=5,  # frames of the median filter before that smoothing
        # Depth from the body's constant size (lift.constant_size_depth): bone lengths, weighted
        # towards bones across the input rays, smoothed over size_sigma frames; the clip's size
        # blended with the default Anny body's by the exponent size_prior_weight (0: the
        # triangulated size, 1: the prior's).
        constant_size=True,
        size_sigma=5.0,
        size_prior_weight=0.5,
        planted_feet=True,  # then the depth profile from planted feet (lift.planted_feet_depth)
        # Then the mid-hip's depth along the input rays from its world track smoothed over this
        # many frames (lift.track_depth; 0: off).
        track_sigma=10.0,
        on_input_rays=True,  # last, joints moved onto their detections' input rays (lift.on_input_rays)
        fit_body=True,  # fit the body model and output its keypoints and parameters
        fit_bucket=64,  # clips are padded to a multiple of this many frames for the fit
    )
    c.body = dict(name="anny", path=None)  # 'smpl' with path=<your SMPL .pkl/.npz>
    return ml_collections.ConfigDict(c)
