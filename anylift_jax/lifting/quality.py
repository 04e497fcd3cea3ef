"""A quality flag per lifted clip from what lifting already knows, so that dataset builders can
drop failures they never look at (docs/keypoint-archive.md, "Quality").

Per frame t, two signs of a doubtful lift:
- bones: the mean over the eight limbs of |L_bt / median_t(L_b) − 1|: a real body's limbs keep
  their length, a lift that lost the pose does not;
- shift: |d_t / d'_t − 1| of the mid-hip's depth d after the depth steps against d' of the
  triangulation: how far the steps had to move the network's answer.
The confidence of frame t is exp(−bones_t / s_b − shift_t / s_s) in [0, 1], the scales from the
lifting config's `quality` section; the clip's quality is the mean confidence, and a clip is
flagged below `flag_below`. Chosen on the validation benchmark, where the disagreement of the
mirror pass and the detections' coverage added nothing (docs/results.md, "Quality flag").
"""
import numpy as np

from anylift_jax import skeleton


def features(triangulated, final, clip):
    """{"bones", "shift"}: (T,) float64 each, for one clip: triangulated (T, K, 3) the keypoints
    before the depth steps, final after them, both in the same world as the clip's cameras."""
    J = skeleton.NUM_JOINTS
    fin = np.asarray(final[:, :J], np.float64)
    a, b = (np.array(i) for i in zip(*skeleton.LIMB_BONES))
    length = np.linalg.norm(fin[:, a] - fin[:, b], axis=-1)
    bones = np.mean(np.abs(length / np.maximum(np.median(length, 0), 1e-6) - 1.0), 1)
    c2w = clip.cam_c2w.astype(np.float64)
    eye, axis = c2w[:, :3, 3], c2w[:, :3, 2]
    d_final = np.einsum("ti,ti->t", skeleton.mid_hip(fin) - eye, axis)
    d_tri = np.einsum("ti,ti->t", skeleton.mid_hip(np.asarray(triangulated[:, :J], np.float64)) - eye, axis)
    shift = np.abs(d_final / np.where(np.abs(d_tri) > 1e-6, d_tri, 1e-6) - 1.0)
    # A frame whose triangulation failed (filled by the depth steps) is a doubtful frame.
    return {k: np.nan_to_num(v, nan=1.0, posinf=1.0) for k, v in (("bones", bones), ("shift", shift))}


def confidence(feats, qc):
    """(T,) float32 in [0, 1]: the per-frame confidence of `features` with the scales of the
    lifting config's `quality` section qc."""
    return np.exp(-feats["bones"] / qc.bone_scale - feats["shift"] / qc.shift_scale).astype(np.float32)
