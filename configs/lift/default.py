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
    c.lift = dict(
        batch_size=8,  # windows per network batch (rounded up to a multiple of the devices)
        clips_per_batch=16,  # clips lifted (and body-fitted) together
        # Frames shared by consecutive windows of long clips, cross-faded: each frame is lifted in
        # about length / (length − overlap) windows. Held-out benchmark, shipped model of commit
        # bad6cc3, 16 / 32 / 48: WA-MPJPE100 98.2 / 100.4 / 96.7 mm, W-MPJPE100 182 / 177 / 171;
        # TRAIN motions re-rendered WA 104.2 / 100.8 / 101.1; 3x the network cost of 16 at 48.
        overlap=48,
        score_threshold=views.SCORE_THRESHOLD,  # detector confidence below which a keypoint is missing
        # Triangulation weight of a generated view's keypoint relative to a detected one of
        # confidence 1: the input view is observed, the others are samples (held-out benchmark:
        # 0.1 vs 1.0 gave PA-MPJPE 53.8 vs 58.8 mm, WA-MPJPE100 186 vs 198 mm, 2D error 15 vs 43 px;
        # shipped model of commit 802e683, 0.05 / 0.1 / 0.2 / 0.4: WA-MPJPE100 87.0 / 86.9 / 87.0 / 87.9).
        generated_view_weight=0.1,
        # Depth from the body's constant size (lift.constant_size_depth): bone lengths, weighted
        # towards bones across the input rays, smoothed over this many frames. Held-out benchmark,
        # model of commit 8834a7e, sigma 3 / 5 / 7 / 10 / 20: WA-MPJPE100 108 / 106 / 106 / 108 / 116 mm;
        # TRAIN motions re-rendered: 132 / 134 / 137 / 143 / 157.
        size_sigma=5.0,
        # Exponent of the size prior in that step (0: the triangulated size, 1: the default Anny
        # body's). Held-out benchmark, shipped model of commit df789d4 / a second training run of
        # its config, 0 vs 0.25: WA-MPJPE100 88.8 / 97.5 -> 86.9 / 91.7 mm, W-MPJPE100 162 / 174
        # -> 150 / 153, RTE 1.73 / 2.22 -> 1.76 / 1.89 %; TRAIN motions re-rendered WA 102.1 /
        # 103.3 -> 100.5 / 102.5 (docs/results.md; 0.5 and 1 cost RTE where the camera orbits).
        size_prior_weight=0.25,
        # Also lift each clip's mirror image (lift.mirrored) and average the two triangulations:
        # twice the network cost; models with object keypoints (HOI) lift once. Held-out
        # benchmark, model of commit 8834a7e: PA-MPJPE 54.5 -> 51.5 mm, WA-MPJPE100 105.7 -> 103.8;
        # TRAIN motions re-rendered: PA 62.2 -> 59.1, WA 134 -> 117.
        mirror_average=True,
        # Replace each DDIM step's generated views by the projection of their triangulation
        # (lift.consistent). Held-out benchmark, shipped model of commit bad6cc3: WA-MPJPE100
        # 98.2 -> 97.5 mm, RTE 2.40 -> 2.17 %; TRAIN motions re-rendered WA 104.2 -> 103.1.
        consistent_views=True,
        # After the size, fix the depth profile by planted feet (lift.planted_feet_depth).
        planted_feet=True,
        # Then the mid-hip's depth along the input rays from its world track smoothed over this
        # many frames (lift.track_depth; 0: off). Shipped model, no body fit, 0 / 5 / 7 / 10 / 20:
        # held-out WA-MPJPE100 85.5 / 79.0 / 76.2 / 74.1 / 76.0 mm; TRAIN motions re-rendered
        # 99.1 / 94.3 / 93.5 / 94.3 / 108.7, RTE 1.72 / 1.68 / 1.74 / 1.92 / 2.78 %.
        track_sigma=7.0,
        smooth_sigma=2.0,  # Gaussian temporal smoothing of the triangulated keypoints, frames
        fit_body=True,  # fit the body model and output its keypoints and parameters
        fit_bucket=64,  # clips are padded to a multiple of this many frames for the fit
    )
    c.body = dict(name="anny", path=None)  # 'smpl' with path=<your SMPL .pkl/.npz>
    return ml_collections.ConfigDict(c)
