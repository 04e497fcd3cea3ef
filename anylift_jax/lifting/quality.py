"""A quality flag per lifted clip from what lifting already knows, so that dataset builders can
drop failures they never look at (docs/keypoint-archive.md, "Quality").

Per frame t, four signs of a doubtful lift, each in metres or as a fraction:
- mirror: mean joint distance between the clip's lift and its mirror image's, mirrored back
  (`frames.mirrored`): two estimates of one motion with different model biases;
- bones: mean over limbs of |L_bt / median_t(L_b) − 1|: a real body's limbs keep their length;
- shift: |d_t / d'_t − 1| of the mid-hip's depth d after the depth steps against d' of the
  triangulation: how far the steps had to move the network's answer;
- coverage: the fraction of the 17 body joints the input view detects.
The confidence of frame t is coverage_t · exp(−mirror_t / s_m − bones_t / s_b − shift_t / s_s)
in [0, 1], the scales s from the lifting config's `quality` section (chosen on the validation
benchmark); the clip's quality is the mean confidence, and a clip is flagged below `flag_below`.
"""
import numpy as np

from anylift_jax import skeleton

FEATURES = ("mirror", "bones", "shift", "coverage")


def features(forward, back, triangulated, final, clip, score_threshold):
    """{name: (T,) float64} of `FEATURES` for one clip: forward and back (T, K, 3) the
    triangulations of the clip and of its mirror image mirrored back (back None without the
    mirror pass: mirror 0), triangulated their average, final the keypoints after the depth steps,
    all in the same (upright) world; clip its `archive.Clip`."""
    J = skeleton.NUM_JOINTS
    fin = np.asarray(final[:, :J], np.float64)
    if back is None:
        mirror = np.zeros(len(fin))
    else:
        mirror = np.nanmean(np.linalg.norm(forward[:, :J] - back[:, :J], axis=-1), 1)
    a, b = (np.array(i) for i in zip(*skeleton.LIMB_BONES))
    length = np.linalg.norm(fin[:, a] - fin[:, b], axis=-1)
    bones = np.mean(np.abs(length / np.maximum(np.median(length, 0), 1e-6) - 1.0), 1)
    c2w = clip.cam_c2w.astype(np.float64)
    eye, axis = c2w[:, :3, 3], c2w[:, :3, 2]
    d_final = np.einsum("ti,ti->t", skeleton.mid_hip(fin) - eye, axis)
    d_tri = np.einsum("ti,ti->t", skeleton.mid_hip(np.asarray(triangulated[:, :J], np.float64)) - eye, axis)
    shift = np.abs(d_final / np.where(np.abs(d_tri) > 1e-6, d_tri, 1e-6) - 1.0)
    coverage = np.mean(clip.scores[:, :J] > score_threshold, 1)
    out = {"mirror": mirror, "bones": bones, "shift": shift, "coverage": coverage}
    return {k: np.nan_to_num(v, nan=1.0, posinf=1.0) for k, v in out.items()}


def confidence(feats, qc):
    """(T,) float32 in [0, 1]: the per-frame confidence of `features` with the scales of the
    lifting config's `quality` section qc."""
    bad = feats["mirror"] / qc.mirror_scale + feats["bones"] / qc.bone_scale + feats["shift"] / qc.shift_scale
    return (feats["coverage"] * np.exp(-bad)).astype(np.float32)
