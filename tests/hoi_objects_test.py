"""Object categories and mesh queries (anylift_jax.hoi.objects)."""
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from anylift_jax.hoi import objects

# Part volumes (m³) from the dimensions in the asset descriptions.
VOLUMES = {
    "box": 0.35 * 0.45 * 0.40,
    "table": 1.2 * 0.7 * 0.04 + 4 * 0.05 * 0.05 * 0.71,
    "chair": 0.45 * 0.45 * 0.04 + 0.04 * 0.45 * 0.45 + 4 * 0.04 * 0.04 * 0.41,
}
BOX_HALF = np.array([0.175, 0.225, 0.2])  # box half extents; its centre is (0, 0, 0.2)


def test_shipped_categories():
    assert set(objects.CATEGORIES) >= {"box", "table", "chair"}
    for name in objects.CATEGORIES:
        cat = objects.load_category(name)
        assert cat.name == name and cat.num_keypoints == len(cat.keypoints) >= 3
        assert cat.keypoints.dtype == np.float32 and cat.faces.dtype == np.int32


@pytest.mark.parametrize("name", ["box", "table", "chair"])
def test_mesh_is_closed_outward_and_in_the_canonical_frame(name):
    cat = objects.load_category(name)
    # Closed and consistently oriented: every directed edge once, its reverse once.
    edges = np.concatenate([cat.faces[:, [0, 1]], cat.faces[:, [1, 2]], cat.faces[:, [2, 0]]])
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)
    assert all((b, a) in directed for a, b in directed)
    # Divergence theorem: signed volume = Σ det(a, b, c) / 6, positive for outward faces.
    tri = cat.triangles.astype(np.float64)
    volume = np.linalg.det(tri).sum() / 6.0
    np.testing.assert_allclose(volume, VOLUMES[name], rtol=1e-4)
    # Z up with the base on z = 0, origin at the centre of the base.
    lo, hi = cat.vertices.min(0), cat.vertices.max(0)
    assert lo[2] == 0.0
    np.testing.assert_allclose((lo[:2] + hi[:2]) / 2, 0.0, atol=1e-6)
    # Keypoints lie on the mesh surface.
    d = np.asarray(objects.surface_distance(cat.keypoints, cat.triangles))
    assert d.max() < 1e-6


def _box_sdf(p):
    """Closed-form signed distance of points (N, 3) to the box category's cuboid."""
    q = np.abs(p - np.array([0.0, 0.0, 0.2])) - BOX_HALF
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)


def test_surface_distance_and_winding_number_match_the_box_sdf():
    cat = objects.load_category("box")
    p = np.random.default_rng(0).uniform([-0.5, -0.5, -0.3], [0.5, 0.5, 0.7], (2000, 3))
    sdf = _box_sdf(p)
    keep = np.abs(sdf) > 1e-4  # the inside test is ill-posed on the surface itself
    d = np.asarray(objects.surface_distance(p.astype(np.float32), cat.triangles))
    w = np.asarray(objects.winding_number(p.astype(np.float32), cat.triangles))
    np.testing.assert_allclose(d, np.abs(sdf), atol=2e-6)
    np.testing.assert_array_equal(w[keep] > 0.5, sdf[keep] < 0)
    np.testing.assert_allclose(w[keep], (sdf[keep] < 0).astype(float), atol=1e-4)


def test_to_world_matches_scipy_and_to_canonical_inverts_it():
    rng = np.random.default_rng(1)
    R = Rotation.random(5, random_state=2)
    m = R.as_matrix()
    rot6d = np.concatenate([m[:, :, 0], m[:, :, 1]], -1).astype(np.float32)
    t = rng.normal(size=(5, 3)).astype(np.float32)
    s = np.float32(1.7)
    p = rng.normal(size=(4, 3)).astype(np.float32)
    world = np.asarray(objects.to_world(p, rot6d, t, s))
    expect = s * np.stack([R[i].apply(p) for i in range(5)]) + t[:, None]
    np.testing.assert_allclose(world, expect, atol=1e-5)
    back = np.asarray(objects.to_canonical(world, rot6d, t, s))
    np.testing.assert_allclose(back, np.broadcast_to(p, back.shape), atol=1e-5)


def test_bad_category_files_name_the_file_and_key(tmp_path):
    good = json.loads((objects.ASSETS / "box.json").read_text())
    for key, value, needle in [("faces", [[0, 1, 99]], "'faces'"),
                               ("keypoints", [[0, 0]], "'keypoints'"),
                               ("keypoint_names", ["a"], "'keypoint_names'")]:
        path = tmp_path / f"bad_{key}.json"
        path.write_text(json.dumps({**good, key: value}))
        with pytest.raises(ValueError, match=rf"bad_{key}\.json: key {needle}"):
            objects.read_category(path)
    path = tmp_path / "missing.json"
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "vertices"}))
    with pytest.raises(ValueError, match=r"missing\.json: missing key 'vertices'"):
        objects.read_category(path)
    with pytest.raises(KeyError, match="no object category 'sofa'"):
        objects.load_category("sofa")
