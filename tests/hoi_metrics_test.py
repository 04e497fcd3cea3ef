"""HOI metrics (anylift_jax.hoi.metrics) on closed-form cases."""
import numpy as np
from scipy.spatial.transform import Rotation

from anylift_jax.hoi import metrics
from anylift_jax.hoi.objects import load_category

BOX = load_category("box")  # 0.35 (x) × 0.45 (y) × 0.40 (z) m, base centre at the origin


def _rot6d(R):
    m = R.as_matrix()
    return np.concatenate([m[..., :, 0], m[..., :, 1]], -1).astype(np.float32)


def _pose(T, transl=(0.0, 0.0, 0.0), R=None, scale=1.0):
    R = Rotation.identity(T) if R is None else R
    return (_rot6d(R), np.broadcast_to(np.float32(transl), (T, 3)).copy(), np.float32(scale))


def test_contact_distance_uses_the_nearer_wrist_on_contact_frames():
    T = 4
    t = np.array([1.0, 2.0, 0.0], np.float32)
    kp = np.full((T, 17, 3), 10.0, np.float32)
    # Left wrist 30 mm outside the +y face (scaled box: half-width 0.45); right wrist far away.
    kp[:, 9] = t + [0.0, 0.45 + 0.03, 0.4]
    kp[2, 9] = t + [0.0, 0.45 + 0.5, 0.4]  # a non-contact frame with a large distance
    contact = np.array([1, 1, 0, 1], np.float32)
    d = float(metrics.contact_distance(kp, _pose(T, t, scale=2.0), BOX, contact))
    np.testing.assert_allclose(d, 30.0, atol=1e-3)


def test_ground_penetration():
    T = 3
    np.testing.assert_allclose(metrics.ground_penetration(_pose(T, (0.5, 0.0, -0.03)), BOX), 30.0,
                               atol=1e-3)
    np.testing.assert_allclose(metrics.ground_penetration(_pose(T, (0.0, 0.0, 0.2)), BOX), 0.0)
    # 90° about x turns the ±0.225 m y-extent into z: the lowest vertex is 225 mm under the floor.
    R = Rotation.from_rotvec(np.tile([np.pi / 2, 0.0, 0.0], (T, 1)))
    np.testing.assert_allclose(metrics.ground_penetration(_pose(T, R=R), BOX), 225.0, atol=1e-3)


def test_body_penetration_is_the_deepest_inside_keypoint():
    T = 2
    kp = np.full((T, 17, 3), 5.0, np.float32)
    kp[:, 0] = [0.0, 0.0, 0.2]  # box centre: 175 mm from the nearest (±x) faces
    kp[:, 1] = [0.0, 0.2, 0.2]  # 25 mm inside the +y face
    kp[1, 0] = [1.0, 0.0, 0.2]  # outside in frame 1
    np.testing.assert_allclose(metrics.body_penetration(kp, _pose(T), BOX), [175.0, 25.0], atol=1e-3)


def test_pose_error():
    T = 5
    R = Rotation.from_rotvec(np.tile([0.0, 0.0, np.deg2rad(10.0)], (T, 1)))
    truth = _pose(T, (1.0, 2.0, 0.0), scale=1.0)
    pred = _pose(T, (1.03, 2.04, 0.0), R=Rotation.random(1, random_state=0) * R, scale=1.1)
    truth = (_rot6d(Rotation.random(1, random_state=0) * Rotation.identity(T)),) + truth[1:]
    rot, trans, scale = metrics.pose_error(pred, truth)
    np.testing.assert_allclose(rot, 10.0, atol=1e-3)
    np.testing.assert_allclose(trans, 50.0, atol=1e-3)
    np.testing.assert_allclose(scale, 10.0, atol=1e-4)
