"""Object categories of the HOI path (Sec. 2.2): M canonical 3D keypoints P on a canonical mesh,
object poses (6D rotation, translation, one scale) and queries against the posed mesh.

A category is one JSON file in `anylift_jax/assets/objects/` (format in its README.md): metres,
object frame Z up, +X front, origin at the centre of the base, so an object with translation
z = 0 and an upright rotation stands on the floor. A pose maps canonical points p to the world
as x = s R p + t with R = `rot6d_to_matrix(rot6d)` (Zhou et al. 2019).

Mesh queries (`surface_distance`, `winding_number`) are in jax.numpy, batched over leading dims.
"""
import dataclasses
import functools
import json
from pathlib import Path

import chex
import jax.numpy as jnp
import numpy as np

from anylift_jax.geometry.rotations import rot6d_to_matrix, safe_norm

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "objects"
CATEGORIES = tuple(sorted(p.stem for p in ASSETS.glob("*.json")))


@dataclasses.dataclass(frozen=True, eq=False)
class ObjectCategory:
    """One object category in its canonical frame.

    keypoints: (M, 3) float32 canonical keypoints P; keypoint_names: M names.
    vertices: (N, 3) float32 and faces: (F, 3) int32 of a closed mesh, triangles counter-clockwise
    seen from outside.
    """
    name: str
    description: str
    keypoint_names: tuple
    keypoints: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray

    @property
    def num_keypoints(self):
        return len(self.keypoint_names)

    @property
    def triangles(self):
        """(F, 3, 3) corner positions of every face."""
        return self.vertices[self.faces]


def _field(path, data, key, dtype, shape):
    if key not in data:
        raise ValueError(f"{path}: missing key '{key}'")
    try:
        a = np.asarray(data[key], dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: key '{key}': expected a {dtype.__name__} array") from None
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        raise ValueError(f"{path}: key '{key}': expected shape {shape}, got {a.shape}")
    return a


def read_category(path):
    """Read and validate a category JSON file -> `ObjectCategory` (ValueError naming file and key)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    keypoints = _field(path, data, "keypoints", np.float32, (None, 3))
    vertices = _field(path, data, "vertices", np.float32, (None, 3))
    faces = _field(path, data, "faces", np.int32, (None, 3))
    names = data.get("keypoint_names")
    if not isinstance(names, list) or len(names) != len(keypoints) or len(set(names)) != len(names):
        raise ValueError(f"{path}: key 'keypoint_names': expected {len(keypoints)} distinct names, "
                         "one per keypoint")
    if len(keypoints) < 3:
        raise ValueError(f"{path}: key 'keypoints': need at least 3 keypoints for a pose, got "
                         f"{len(keypoints)}")
    if faces.size == 0 or faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{path}: key 'faces': indices must lie in [0, {len(vertices)})")
    for key, a in (("keypoints", keypoints), ("vertices", vertices)):
        if not np.isfinite(a).all():
            raise ValueError(f"{path}: key '{key}': non-finite values")
    return ObjectCategory(name=str(data.get("name", path.stem)),
                          description=str(data.get("description", "")),
                          keypoint_names=tuple(str(n) for n in names),
                          keypoints=keypoints, vertices=vertices, faces=faces)


@functools.lru_cache(maxsize=None)
def load_category(name):
    """The shipped category `name` (one of CATEGORIES)."""
    if name not in CATEGORIES:
        raise KeyError(f"no object category '{name}'; have {list(CATEGORIES)}")
    return read_category(ASSETS / f"{name}.json")


def to_world(points, rot6d, transl, scale):
    """Canonical points (…, N, 3) -> world s R p + t, pose (…, 6), (…, 3), (…)."""
    R = rot6d_to_matrix(rot6d)
    s = jnp.asarray(scale)[..., None, None]
    return s * jnp.einsum("...ij,...nj->...ni", R, points) + transl[..., None, :]


def to_canonical(points, rot6d, transl, scale):
    """World points (…, N, 3) -> canonical Rᵀ (x − t) / s: the inverse of `to_world`."""
    R = rot6d_to_matrix(rot6d)
    s = jnp.asarray(scale)[..., None, None]
    return jnp.einsum("...ji,...nj->...ni", R, points - transl[..., None, :]) / s


def _segment_distance(p, a, b):
    ab = b - a
    u = jnp.clip(jnp.sum((p - a) * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-20), 0.0, 1.0)
    return safe_norm(p - a - u[..., None] * ab)


def surface_distance(points, triangles):
    """Unsigned distance (…, N) from points (…, N, 3) to the nearest of triangles (F, 3, 3).

    Per triangle: the distance to its plane where the foot of the perpendicular falls inside it
    (all three edge tests non-negative), else the distance to the nearest of its three edges.
    """
    chex.assert_shape(triangles, (None, 3, 3))
    p = points[..., None, :]  # (…, N, 1, 3)
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    n = jnp.cross(b - a, c - a)
    inside = ((jnp.sum(jnp.cross(b - a, p - a) * n, -1) >= 0)
              & (jnp.sum(jnp.cross(c - b, p - b) * n, -1) >= 0)
              & (jnp.sum(jnp.cross(a - c, p - c) * n, -1) >= 0))
    plane = jnp.abs(jnp.sum((p - a) * n, -1)) / jnp.maximum(safe_norm(n), 1e-20)
    edge = jnp.minimum(jnp.minimum(_segment_distance(p, a, b), _segment_distance(p, b, c)),
                       _segment_distance(p, c, a))
    return jnp.min(jnp.where(inside, plane, edge), -1)


def winding_number(points, triangles):
    """Generalised winding number (…, N) of points (…, N, 3) w.r.t. a closed mesh's triangles
    (F, 3, 3): Σ solid angles / 4π (Van Oosterom & Strackee 1983), 1 inside and 0 outside for
    counter-clockwise (outward) faces; > 1 where closed parts overlap."""
    chex.assert_shape(triangles, (None, 3, 3))
    d = triangles - points[..., None, None, :]  # (…, N, F, 3, 3)
    a, b, c = d[..., 0, :], d[..., 1, :], d[..., 2, :]
    la, lb, lc = safe_norm(a), safe_norm(b), safe_norm(c)
    det = jnp.sum(a * jnp.cross(b, c), -1)
    den = (la * lb * lc + jnp.sum(a * b, -1) * lc + jnp.sum(b * c, -1) * la
           + jnp.sum(c * a, -1) * lb)
    return jnp.sum(2.0 * jnp.arctan2(det, den), -1) / (4.0 * jnp.pi)
