"""A synthetic SMPL-format body model file, so tests and benchmarks need no licensed SMPL file.

The file has SMPL's layout and sizes (6890 vertices, 24 joints, SMPL's kinematic tree, 10 shape
and 207 pose blend shapes) but made-up content: a rough humanoid of capsules in SMPL's rest pose
(Y up, facing +Z, metres), smooth skinning weights (a softmax of the distance to each joint's bone),
a joint regressor averaging the vertices around each joint, and small smooth blend shapes. The
vertices that `model.SMPL_VERTEX_PICKS` reads (nose, eyes, ears, toes, heels) are placed where
those body parts are.
"""
import pickle

import numpy as np
import scipy.sparse

NUM_VERTICES = 6890
NUM_BETAS = 10
# SMPL's kinematic tree: parent of each of the 24 joints (pelvis, l/r hip, spine1, l/r knee, spine2,
# l/r ankle, spine3, l/r foot, neck, l/r collar, head, l/r shoulder, l/r elbow, l/r wrist, l/r hand).
PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
# Rest joint positions (Y up, +Z forward, left = +X), roughly an adult's, metres.
JOINTS = np.array([
    [0.0, 0.0, 0.0], [0.07, -0.09, 0.0], [-0.07, -0.09, 0.0], [0.0, 0.11, -0.01],
    [0.10, -0.47, 0.0], [-0.10, -0.47, 0.0], [0.0, 0.25, 0.0], [0.09, -0.87, -0.03],
    [-0.09, -0.87, -0.03], [0.0, 0.31, 0.02], [0.11, -0.93, 0.10], [-0.11, -0.93, 0.10],
    [0.0, 0.52, 0.0], [0.08, 0.44, 0.0], [-0.08, 0.44, 0.0], [0.0, 0.60, 0.04],
    [0.18, 0.45, 0.0], [-0.18, 0.45, 0.0], [0.44, 0.44, -0.02], [-0.44, 0.44, -0.02],
    [0.70, 0.45, 0.0], [-0.70, 0.45, 0.0], [0.78, 0.44, 0.0], [-0.78, 0.44, 0.0],
])
# Leaf bones end at these tips: feet -> toes, head -> crown, hands -> finger tips.
_TIPS = {10: [0.11, -0.95, 0.18], 11: [-0.11, -0.95, 0.18], 15: [0.0, 0.82, 0.04],
         22: [0.88, 0.44, 0.0], 23: [-0.88, 0.44, 0.0]}
_RADIUS = {0: 0.12, 3: 0.13, 6: 0.14, 9: 0.14, 12: 0.05, 15: 0.09, 13: 0.06, 14: 0.06,
           1: 0.08, 2: 0.08, 4: 0.06, 5: 0.06, 7: 0.045, 8: 0.045, 10: 0.04, 11: 0.04}
_RING = 10  # vertices per ring of a capsule
# Where the picked vertices go (nose, eyes, ears, big/small toes, heels).
_PICK_TARGETS = {
    332: [0.0, 0.70, 0.13], 6260: [-0.035, 0.73, 0.11], 2800: [0.035, 0.73, 0.11],
    4071: [-0.09, 0.71, 0.04], 583: [0.09, 0.71, 0.04],
    3216: [0.09, -0.95, 0.18], 3226: [0.14, -0.95, 0.16], 3387: [0.11, -0.95, -0.06],
    6617: [-0.09, -0.95, 0.18], 6624: [-0.14, -0.95, 0.16], 6787: [-0.11, -0.95, -0.06],
}


def _bones():
    """(start, end, joint) segments: every joint's bone towards its children's mean or its tip."""
    bones = []
    for j in range(len(PARENTS)):
        children = np.nonzero(PARENTS == j)[0]
        end = np.asarray(_TIPS[j]) if j in _TIPS else JOINTS[children].mean(0)
        bones.append((JOINTS[j], end, j))
    return bones


def _segment_distance(points, a, b):
    ab = b - a
    u = np.clip((points - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + u[:, None] * ab), axis=-1)


def _capsules(rng):
    """Vertices (6890, 3) and faces of one capsule (stacked rings) per bone."""
    bones = _bones()
    lengths = np.array([np.linalg.norm(e - s) + 0.02 for s, e, _ in bones])
    rings = np.maximum(2, np.floor(lengths / lengths.sum() * NUM_VERTICES / _RING)).astype(int)
    rings[np.argmax(rings)] += NUM_VERTICES // _RING - rings.sum()
    verts, faces = [], []
    for (start, end, j), n in zip(bones, rings):
        axis = end - start
        axis = axis / max(np.linalg.norm(axis), 1e-9)
        ortho = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
        ortho /= np.linalg.norm(ortho)
        ortho2 = np.cross(axis, ortho)
        r = _RADIUS.get(j, 0.035)
        base = sum(len(v) for v in verts)
        for i, u in enumerate(np.linspace(0.0, 1.0, n)):
            ang = np.linspace(0.0, 2 * np.pi, _RING, endpoint=False) + 0.3 * i
            centre = start + u * (end - start)
            ring = centre + r * (np.cos(ang)[:, None] * ortho + np.sin(ang)[:, None] * ortho2)
            verts.append(ring + 0.002 * rng.standard_normal(ring.shape))
            if i:
                a = base + (i - 1) * _RING + np.arange(_RING)
                b = base + i * _RING + np.arange(_RING)
                faces += list(zip(a, b, np.roll(a, -1))) + list(zip(np.roll(a, -1), b, np.roll(b, -1)))
    return np.concatenate(verts), np.asarray(faces, np.int64)


def make_smpl_arrays(seed=0):
    """The arrays of a synthetic SMPL model file (keys as in the official files), float64."""
    rng = np.random.default_rng(seed)
    v, f = _capsules(rng)
    # Move each picked vertex index onto the vertex nearest its body part (a relabelling).
    perm = np.arange(NUM_VERTICES)
    for idx, target in _PICK_TARGETS.items():
        cand = np.argsort(np.linalg.norm(v[perm] - np.asarray(target), axis=-1))
        src = next(c for c in cand if c not in _PICK_TARGETS or c == idx)
        perm[[idx, src]] = perm[[src, idx]]
    v = v[perm]
    f = np.argsort(perm)[f]

    dist = np.stack([_segment_distance(v, s, e) for s, e, _ in _bones()], -1)  # (V, 24)
    logits = -(dist ** 2) / (2 * 0.04 ** 2)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w[w < 1e-4] = 0.0
    weights = w / w.sum(-1, keepdims=True)

    d_joint = np.linalg.norm(v[:, None] - JOINTS[None], axis=-1)  # (V, 24)
    J_regressor = np.zeros((len(JOINTS), NUM_VERTICES))
    for j in range(len(JOINTS)):
        near = np.argsort(d_joint[:, j])[:24]
        J_regressor[j, near] = np.exp(-(d_joint[near, j] / 0.05) ** 2)
    J_regressor /= J_regressor.sum(-1, keepdims=True)

    # Smooth blend shapes: per-joint random offsets spread by the skinning weights, plus a
    # global size change on beta 0 (as SMPL's first beta mostly changes height).
    shapedirs = np.einsum("vj,jck->vck", weights, 0.01 * rng.standard_normal((24, 3, NUM_BETAS)))
    shapedirs[:, :, 0] += 0.03 * v
    posedirs = np.einsum("vj,jcp->vcp", weights, 0.003 * rng.standard_normal((24, 3, 207)))
    kintree_table = np.stack([PARENTS, np.arange(len(PARENTS))]).astype(np.int64)
    return {
        "v_template": v, "f": f, "weights": weights, "shapedirs": shapedirs,
        "posedirs": posedirs, "J_regressor": J_regressor, "kintree_table": kintree_table,
    }


def write_smpl_file(path, seed=0):
    """Write a synthetic SMPL model to `path`: `.npz` (plain arrays) or `.pkl` (the official
    layout: a pickled dict with a sparse `J_regressor`). Returns the path."""
    arrays = make_smpl_arrays(seed)
    path = str(path)
    if path.endswith(".npz"):
        np.savez(path, **arrays)
    elif path.endswith(".pkl"):
        arrays["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        with open(path, "wb") as fh:
            pickle.dump(arrays, fh, protocol=2)
    else:
        raise ValueError(f"{path}: synthetic SMPL files are written as .npz or .pkl")
    return path
