"""Keypoint archive v1 (docs/keypoint-archive.md): read, validate, write; writer of lifting outputs.

An archive is a folder of `<clip_id>.npz`. Files are opened with `np.load(..., allow_pickle=False)`
and every member's .npy header is inspected before its data is read, so a pickled object array
is refused with a clear message instead of numpy's generic one. Every violation raises one
`ArchiveError` whose one-line message names the file and the key, e.g.
`clip7.npz: key 'cam_c2w': expected shape (T, 4, 4) with T=120, got (120, 3, 4)`.
"""
import dataclasses
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from anylift_jax import skeleton

# Max |RᵀR − I| of a cam_c2w rotation part; SLAM poses are orthonormal to ~1e-6.
ROTATION_TOL = 1e-3
ROW_TOL = 1e-6  # homogeneous last rows of K and cam_c2w are written exactly

CLIP_KEYS = (
    "keypoints", "scores", "intrinsics", "cam_c2w", "image_size", "fps",
    "object_keypoints", "object_scores", "object_category",
)
OBJECT_POSE_KEYS = ("object_rot6d", "object_transl", "object_scale")


class ArchiveError(ValueError):
    """A keypoint-archive or lifting-output file (or an adapter input) violates its format."""


def key_error(name, key, msg):
    """The ArchiveError for a bad `key` of file `name` (callers raise it)."""
    return ArchiveError(f"{name}: key '{key}': {msg}")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Clip:
    """One validated archive clip; arrays are numpy, T frames, M object keypoints.

    keypoints (T, 17, 2) float32 pixels, COCO-17; 0 where the score is 0.
    scores (T, 17) float32 in [0, 1]. intrinsics (T, 3, 3) float32. cam_c2w (T, 4, 4) float32,
    OpenCV axes. image_size (2,) int64 (width, height). fps float.
    object_keypoints (T, M, 2) float32 (0 where the object score is 0), object_scores (T, M)
    float32 and object_category str are all None for clips without an object.
    """

    clip_id: str
    keypoints: np.ndarray
    scores: np.ndarray
    intrinsics: np.ndarray
    cam_c2w: np.ndarray
    image_size: np.ndarray
    fps: float
    object_keypoints: np.ndarray | None = None
    object_scores: np.ndarray | None = None
    object_category: str | None = None

    @property
    def num_frames(self):
        return self.keypoints.shape[0]

    def __repr__(self):
        obj = f", object={self.object_category!r}" if self.object_category is not None else ""
        return (f"Clip({self.clip_id!r}, T={self.num_frames}, image_size="
                f"{tuple(self.image_size.tolist())}, fps={self.fps}{obj})")

    def to_arrays(self):
        """The archive keys of this clip as a dict of numpy arrays (what `write_clip` stores)."""
        arrays = {
            "keypoints": self.keypoints, "scores": self.scores, "intrinsics": self.intrinsics,
            "cam_c2w": self.cam_c2w, "image_size": self.image_size, "fps": np.asarray(self.fps),
        }
        if self.object_keypoints is not None:
            arrays["object_keypoints"] = self.object_keypoints
            arrays["object_scores"] = self.object_scores
            arrays["object_category"] = np.asarray(self.object_category)
        return arrays


# ----------------------------------------------------------------------------------------------
# Loading .npz files safely


def _member_header(name, npz, key):
    """(shape, dtype) of member `key` of an open NpzFile, read from its .npy header only."""
    member = key + ".npy" if key + ".npy" in npz.zip.namelist() else key
    try:
        with npz.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise key_error(name, key, f"corrupt member, not a readable .npy array ({e})")
    return shape, dtype


def load_npz(path, keys=None):
    """Arrays of an .npz file, read with allow_pickle=False.

    keys: the members to load (absent ones are skipped); None loads all. Every member's header is
    checked, loaded or not, so a file holding any pickled object array is refused. Members not in
    `keys` (e.g. MegaSaM's `images`, `depths`) are never read.
    Returns (arrays: dict[str, ndarray], headers: dict[str, (shape, dtype)] of all members).
    """
    name = os.fspath(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ArchiveError(f"{name}: no such file") from None
    except ValueError:
        # Neither zip nor .npy: numpy takes it for a pickle, which archives never need.
        raise ArchiveError(f"{name}: not an .npz archive (not a zip file; files that need "
                           "pickle are refused)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ArchiveError(f"{name}: not a readable .npz archive (truncated or corrupt file: "
                           f"{type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ArchiveError(f"{name}: holds a single .npy array of shape {npz.shape}, "
                           "expected an .npz archive of named arrays")
    with npz:
        headers = {key: _member_header(name, npz, key) for key in npz.files}
        for key, (_, dtype) in headers.items():
            if dtype.hasobject:
                raise key_error(name, key, f"holds a pickled object array (dtype {dtype}), "
                                "refused: files are read without pickle; save numbers as "
                                "float/int arrays and text as a numpy str array")
        arrays = {}
        for key in npz.files if keys is None else [k for k in keys if k in headers]:
            try:
                arrays[key] = npz[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise key_error(name, key,
                                f"corrupt member, data unreadable ({type(e).__name__}: {e})")
    return arrays, headers


# ----------------------------------------------------------------------------------------------
# Per-key checks (shared with the adapters in pack.py, which name their own files and keys)


def _dims_text(pattern, dims):
    shape = "(" + ", ".join(str(d) for d in pattern) + ("," if len(pattern) == 1 else "") + ")"
    bound = [f"{d}={dims[d]}" for d in pattern if isinstance(d, str) and d in dims]
    return shape + (" with " + ", ".join(bound) if bound else "")


def check_array(name, key, value, pattern, dims, kinds="f"):
    """Check dtype kind and shape of one array; bind symbolic dims (e.g. 'T') on first use.

    pattern: tuple of ints and symbols, e.g. ('T', 17, 2); dims: dict of bound symbols, updated in
    place. kinds: accepted numpy dtype kinds ('f' float, 'iu' integer, 'iuf' number, 'U' str).
    Returns the value as an ndarray, dtype unchanged.
    """
    value = np.asarray(value)
    if value.dtype.kind not in kinds:
        want = {"f": "a float array", "iu": "an integer array", "U": "a str array",
                "iuf": "a number"}[kinds]
        raise key_error(name, key, f"expected {want}, got dtype {value.dtype}")
    ok = value.ndim == len(pattern)
    if ok:
        new = dict(dims)
        for want, got in zip(pattern, value.shape):
            if isinstance(want, str):
                new.setdefault(want, got)
                ok &= new[want] == got
            else:
                ok &= want == got
    if not ok:
        raise key_error(name, key,
                        f"expected shape {_dims_text(pattern, dims)}, got {tuple(value.shape)}")
    dims.update(new)
    return value


def _first(mask):
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_finite(name, key, value):
    bad = ~np.isfinite(value)
    if bad.any():
        raise key_error(name, key, f"non-finite value {value[bad][0]} at index {_first(bad)}")


def check_scores(name, key, scores):
    """Scores must be finite and in [0, 1]."""
    check_finite(name, key, scores)
    bad = (scores < 0) | (scores > 1)
    if bad.any():
        raise key_error(name, key,
                        f"values must lie in [0, 1], got {scores[bad][0]} at index {_first(bad)}")


def check_points(name, key, points, scores, score_key):
    """Points (..., 2) must be finite wherever their score (...) is positive; returns float32
    points with the unobserved ones (score 0) set to 0."""
    bad = (scores > 0) & ~np.isfinite(points).all(-1)
    if bad.any():
        at = _first(bad)
        raise key_error(name, key, f"non-finite point at index {at} where '{score_key}' is "
                        f"{scores[at]} > 0 (only points with score 0 may be NaN)")
    return np.where(scores[..., None] > 0, points, 0).astype(np.float32)


def check_cam_c2w(name, key, c2w, dims):
    """cam_c2w (T, 4, 4): finite, last row (0, 0, 0, 1), rotation orthonormal with det +1."""
    c2w = check_array(name, key, c2w, ("T", 4, 4), dims)
    check_finite(name, key, c2w)
    row = np.abs(c2w[:, 3] - np.array([0, 0, 0, 1])).max(-1) > ROW_TOL
    if row.any():
        t = int(np.argmax(row))
        raise key_error(name, key,
                        f"last row of frame {t} must be (0, 0, 0, 1), got {c2w[t, 3].tolist()}")
    R = c2w[:, :3, :3].astype(np.float64)
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max((-1, -2))
    if (err > ROTATION_TOL).any():
        t = int(np.argmax(err > ROTATION_TOL))
        raise key_error(name, key, f"rotation part of frame {t} is not orthonormal "
                        f"(max |R^T R - I| = {err[t]:.3g} > {ROTATION_TOL})")
    det = np.linalg.det(R)
    if (det < 0).any():
        t = int(np.argmax(det < 0))
        raise key_error(name, key, f"rotation part of frame {t} is a reflection "
                        f"(det = {det[t]:.3f}, expected +1)")
    return c2w.astype(np.float32)


def check_intrinsics(name, key, K, dims):
    """K (3, 3) or (T, 3, 3): finite, positive focal lengths, last row (0, 0, 1); returns (T, 3, 3)
    float32 (T must already be bound in dims)."""
    K = np.asarray(K)
    if K.shape != (3, 3) and K.shape != (dims["T"], 3, 3):
        raise key_error(name, key,
                        f"expected shape (3, 3) or {_dims_text(('T', 3, 3), dims)}, got {K.shape}")
    K = check_array(name, key, K, K.shape, dims)
    check_finite(name, key, K)
    Kt = np.broadcast_to(K, (dims["T"], 3, 3))
    row = np.abs(Kt[:, 2] - np.array([0, 0, 1])).max(-1) > ROW_TOL
    if row.any():
        t = int(np.argmax(row))
        raise key_error(name, key,
                        f"last row (frame {t}) must be (0, 0, 1), got {Kt[t, 2].tolist()}")
    focal = np.stack([Kt[:, 0, 0], Kt[:, 1, 1]], -1)
    if (focal <= 0).any():
        t, i = _first(focal <= 0)
        raise key_error(name, key, "focal lengths must be positive, got "
                        f"f{'xy'[i]} = {focal[t, i]} (frame {t})")
    return Kt.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Clips


def clip_from_arrays(clip_id, arrays, source=None):
    """Validate the archive keys in `arrays` (a mapping of array-likes) and build a `Clip`.

    Unknown keys are ignored. source: the file name used in error messages (default
    `<clip_id>.npz`). Raises ArchiveError naming the source and the offending key.
    """
    name = source if source is not None else f"{clip_id}.npz"
    for key in ("keypoints", "intrinsics", "cam_c2w", "image_size", "fps"):
        if key not in arrays:
            raise key_error(name, key, "missing (required key of archive v1)")
    dims = {}
    keypoints = check_array(name, "keypoints", arrays["keypoints"], ("T", skeleton.NUM_JOINTS, 2),
                            dims)
    if dims["T"] < 1:
        raise key_error(name, "keypoints", "expected at least one frame, got T=0")
    T = dims["T"]
    if "scores" in arrays:
        scores = check_array(name, "scores", arrays["scores"], ("T", skeleton.NUM_JOINTS), dims)
        check_scores(name, "scores", scores)
    else:
        scores = np.ones((T, skeleton.NUM_JOINTS))
    keypoints = check_points(name, "keypoints", keypoints, scores, "scores")
    cam_c2w = check_cam_c2w(name, "cam_c2w", arrays["cam_c2w"], dims)
    intrinsics = check_intrinsics(name, "intrinsics", arrays["intrinsics"], dims)

    image_size = check_array(name, "image_size", arrays["image_size"], (2,), dims, kinds="iu")
    if (image_size <= 0).any():
        raise key_error(name, "image_size",
                        f"width and height must be positive, got {image_size.tolist()}")
    fps = check_array(name, "fps", arrays["fps"], (), dims, kinds="iuf")
    if not (np.isfinite(fps) and fps > 0):
        raise key_error(name, "fps", f"must be a positive finite frame rate, got {fps}")

    obj_kp = obj_scores = category = None
    if "object_keypoints" in arrays:
        obj_kp = check_array(name, "object_keypoints", arrays["object_keypoints"], ("T", "M", 2),
                             dims)
        if dims["M"] < 1:
            raise key_error(name, "object_keypoints",
                            "expected at least one object keypoint, got M=0")
        if "object_category" not in arrays:
            raise key_error(name, "object_category", "missing (required with 'object_keypoints')")
        category = str(check_array(name, "object_category", arrays["object_category"], (), dims,
                                   kinds="U"))
        if not category:
            raise key_error(name, "object_category", "empty category name")
        if "object_scores" in arrays:
            obj_scores = check_array(name, "object_scores", arrays["object_scores"], ("T", "M"),
                                     dims)
            check_scores(name, "object_scores", obj_scores)
        else:
            obj_scores = np.ones(obj_kp.shape[:2])
        obj_kp = check_points(name, "object_keypoints", obj_kp, obj_scores, "object_scores")
        obj_scores = obj_scores.astype(np.float32)
    else:
        for key in ("object_scores", "object_category"):
            if key in arrays:
                raise key_error(name, key, "given without 'object_keypoints'")

    return Clip(
        clip_id=clip_id, keypoints=keypoints, scores=scores.astype(np.float32),
        intrinsics=intrinsics, cam_c2w=cam_c2w, image_size=image_size.astype(np.int64),
        fps=float(fps), object_keypoints=obj_kp, object_scores=obj_scores,
        object_category=category,
    )


def read_clip(path):
    """Read and validate one archive file; clip_id is the file stem. Raises ArchiveError."""
    arrays, _ = load_npz(path, CLIP_KEYS)
    return clip_from_arrays(Path(path).stem, arrays, source=os.fspath(path))


def read_archive(folder):
    """Read every `*.npz` of an archive folder, in sorted file-name order.

    Returns (clips: list[Clip], errors: list[(Path, message)]): bad files are collected, not
    raised, so one broken clip does not stop a batch.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArchiveError(f"{folder}: not an archive folder (no such directory)")
    clips, errors = [], []
    for path in sorted(folder.glob("*.npz")):
        try:
            clips.append(read_clip(path))
        except ArchiveError as e:
            errors.append((path, str(e)))
    return clips, errors


def atomic_savez(path, arrays):
    """np.savez into a temp file in the target folder, then os.replace: readers never see a
    partial file, and a failed write leaves neither a file nor a temp file behind."""
    path = Path(path)
    # The temp name neither starts like nor ends in .npz, so archive globs never pick it up.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_clip(path, clip):
    """Validate `clip` and write it atomically as an archive file `path` = `<clip_id>.npz`."""
    name = os.fspath(path)
    if Path(path).name != f"{clip.clip_id}.npz":
        raise ArchiveError(f"{name}: file name must be '<clip_id>.npz' = '{clip.clip_id}.npz' "
                           "(readers take the clip id from the file stem)")
    arrays = clip.to_arrays()
    clip_from_arrays(clip.clip_id, arrays, source=name)
    atomic_savez(path, arrays)


# ----------------------------------------------------------------------------------------------
# Lifting outputs


def _check_output(name, arrays):
    dims = {}
    if "keypoints3d" not in arrays:
        raise key_error(name, "keypoints3d", "missing (required output key)")
    check_array(name, "keypoints3d", arrays["keypoints3d"], ("T", skeleton.NUM_JOINTS, 3), dims)
    if dims["T"] < 1:
        raise key_error(name, "keypoints3d", "expected at least one frame, got T=0")
    if "body_model" not in arrays:
        raise key_error(name, "body_model", "missing (required output key)")
    if not str(check_array(name, "body_model", arrays["body_model"], (), dims, kinds="U")):
        raise key_error(name, "body_model", "empty body-model name")
    present = [k for k in OBJECT_POSE_KEYS if k in arrays]
    if present and len(present) < len(OBJECT_POSE_KEYS):
        missing = next(k for k in OBJECT_POSE_KEYS if k not in arrays)
        raise key_error(name, missing, f"missing (required with '{present[0]}')")
    if present:
        check_array(name, "object_rot6d", arrays["object_rot6d"], ("T", 6), dims)
        check_array(name, "object_transl", arrays["object_transl"], ("T", 3), dims)
        scale = check_array(name, "object_scale", arrays["object_scale"], (), dims)
        if not scale > 0:
            raise key_error(name, "object_scale", f"must be positive, got {scale}")
    for key, shape in (("confidence", ("T",)), ("quality", ())):
        if key in arrays:
            value = check_array(name, key, arrays[key], shape, dims)
            if not np.all((value >= 0) & (value <= 1)):
                raise key_error(name, key, "expected values in [0, 1]")
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in "biufU":
            raise key_error(name, key, f"expected a numeric or str array, got dtype {value.dtype}")
        if value.dtype.kind == "f":
            check_finite(name, key, value)


def write_output(path, arrays):
    """Validate a lifting output (see the spec's output table) and write it atomically.

    arrays: dict with `keypoints3d` (T, 17, 3), `body_model` str, body parameters, optional
    object pose. Nothing is written when validation or the write fails.
    """
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _check_output(os.fspath(path), arrays)
    atomic_savez(path, arrays)


def validate_output(path):
    """Load a lifting output file and check it against the spec; returns its arrays (dict).

    Raises ArchiveError when the file is missing, unreadable or invalid, so batch lifting can
    skip exactly the clips whose output exists and is valid.
    """
    arrays, _ = load_npz(path)
    _check_output(os.fspath(path), arrays)
    return arrays
