"""COCO-17 keypoint conventions (the layout ViTPose/MMPose write and our files use).

The internal 18-joint layout of MVLift adds a neck (mean of the shoulders) at index 1; `with_neck`
builds it when a model wants it.
"""
import jax.numpy as jnp
import numpy as np

NAMES = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear",
    "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
NUM_JOINTS = len(NAMES)
INDEX = {n: i for i, n in enumerate(NAMES)}

L_HIP, R_HIP = INDEX["l_hip"], INDEX["r_hip"]
HIPS = (L_HIP, R_HIP)
# Joints other than the two hips, in order: the "local pose" of the root/local decomposition.
NON_HIP = tuple(i for i in range(NUM_JOINTS) if i not in HIPS)
SHOULDERS = (INDEX["l_shoulder"], INDEX["r_shoulder"])
ANKLES = (INDEX["l_ankle"], INDEX["r_ankle"])
TORSO = SHOULDERS + HIPS

FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
# Permutation that swaps left and right joints.
FLIP_PERM = np.arange(NUM_JOINTS)
for _a, _b in FLIP_PAIRS:
    FLIP_PERM[_a], FLIP_PERM[_b] = _b, _a

BONES = (
    (0, 1), (0, 2), (1, 3), (2, 4),
    (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16),
)
# Bones whose length is fixed by the skeleton (limbs); torso distances vary with the spine.
LIMB_BONES = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16))


def with_neck(kp):
    """(..., 17, D) -> (..., 18, D) with the neck (mean of shoulders) inserted at index 1."""
    xp = np if isinstance(kp, np.ndarray) else jnp
    neck = kp[..., SHOULDERS, :].mean(axis=-2, keepdims=True)
    return xp.concatenate([kp[..., :1, :], neck, kp[..., 1:, :]], axis=-2)


def mid_hip(kp):
    """(..., 17, D) -> (..., D) pelvis estimate used as the root."""
    return kp[..., HIPS, :].mean(axis=-2)
