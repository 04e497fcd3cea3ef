"""The virtual ring (anylift_jax.views): closed-form geometry of window_ring and subject_track."""
import jax
import numpy as np

from anylift_jax import skeleton, views
from anylift_jax.data import cameras, mocap
from anylift_jax.geometry import cameras as geo

V = 4


def _camera_frame(kp3d, w2c):
    return np.einsum("tij,tkj->tki", w2c[:, :3, :3], kp3d) + w2c[:, None, :3, 3]


def test_subject_track_recovers_the_pelvis_given_its_depth():
    kp3d = mocap.load_shipped("131_01")[:120]
    w2c = cameras.sample_trajectory(np.random.default_rng(0), kp3d, "orbit")
    cam = _camera_frame(kp3d, w2c)
    rays = cam[..., :2] / cam[..., 2:]
    valid = np.ones(rays.shape[:2], bool)
    valid[40:50, skeleton.L_HIP] = False  # a hip missed for 10 frames: interpolated
    truth = skeleton.mid_hip(cam)
    track = views.subject_track(rays, valid, truth[:, 2])
    np.testing.assert_allclose(track[:, 2], truth[:, 2], rtol=1e-6)
    # σ = 2 frames of smoothing of a walk filmed by a shaking orbit camera at 30 fps moves the
    # ray by a centimetre or two; without smoothing the track is the pelvis, the gap bridged
    assert np.abs(track - truth).max() < 0.03
    exact = views.subject_track(rays, valid, truth[:, 2], sigma=0)
    gap = np.r_[:40, 50:120]
    # (the mean of the two hip rays is the mid-hip's ray up to the hips' depth difference: ~1 mm)
    np.testing.assert_allclose(exact[gap], truth[gap], atol=2e-3)
    assert np.abs(exact - truth).max() < 0.03


def test_window_ring_follows_the_track_without_turning():
    kp3d = mocap.load_shipped("amp_humanoid_walk")[:64]
    w2c = cameras.sample_trajectory(np.random.default_rng(1), kp3d, "track")
    pelvis = skeleton.mid_hip(kp3d)  # (T, 3) world
    track = _camera_frame(pelvis[:, None], w2c)[:, 0]
    ring, world, d0 = jax.jit(views.window_ring, static_argnums=2)(w2c.astype(np.float32), track.astype(np.float32), V)
    ring, world = np.asarray(ring, np.float64), np.asarray(world, np.float64)
    np.testing.assert_allclose(world, pelvis, atol=1e-4)
    np.testing.assert_allclose(d0, np.linalg.norm(track[0]), rtol=1e-5)
    np.testing.assert_allclose(ring[0], w2c, atol=1e-6)
    # frame 0 is the static ring of `ring_cameras`
    static = np.asarray(views.ring_cameras(w2c.astype(np.float32), pelvis[0].astype(np.float32), V))
    np.testing.assert_allclose(ring[:, 0], static[:, 0], atol=1e-5)
    # every frame: views 1..V-1 keep their orientation, look at the pelvis along their optical
    # axis and keep the frame-0 distance to it
    np.testing.assert_allclose(ring[1:, :, :3, :3], np.broadcast_to(ring[1:, :1, :3, :3], ring[1:, :, :3, :3].shape), atol=1e-6)
    p = np.einsum("vtij,tj->vti", ring[1:, :, :3, :3], pelvis) + ring[1:, :, :3, 3]
    np.testing.assert_allclose(p[..., :2], 0.0, atol=1e-4)
    eyes = geo.invert_rigid(ring[1:])[..., :3, 3]
    dist = np.linalg.norm(eyes - pelvis, axis=-1)
    np.testing.assert_allclose(dist, np.broadcast_to(dist[:, :1], dist.shape), rtol=1e-5)


def test_camera_up_and_up_rotation_in_a_turned_world():
    """Unrolled cameras (look-at, pitched) in a randomly turned world: `camera_up` finds the
    world's up from a panning camera far better than its mean image-up does (what remains is the
    `UP_PRIOR` pull towards it); a camera that never pans gives an up perpendicular to its x-axis. `up_rotation` agrees with scipy's smallest rotation onto +Z."""
    from scipy.spatial.transform import Rotation
    turn = Rotation.random(random_state=0).as_matrix()
    T = 50
    az = np.linspace(0.0, 1.2, T)
    eyes = np.stack([4 * np.cos(az), 4 * np.sin(az), 1.5 + 0.5 * np.sin(3 * az)], -1)
    w2c = np.asarray(geo.look_at(eyes, np.array([0.0, 0.0, 0.9])), np.float64)  # pitch varies, roll 0
    c2w = np.linalg.inv(w2c)
    c2w[:, :3] = turn @ c2w[:, :3]
    up = views.camera_up(c2w)
    angle = lambda u: np.degrees(np.arccos(np.clip(u @ turn[:, 2] / np.linalg.norm(u), -1, 1)))
    assert angle(-c2w[:, :3, 1].mean(0)) > 5.0 and angle(up) < 1.0, (angle(-c2w[:, :3, 1].mean(0)), angle(up))
    still = views.camera_up(np.repeat(c2w[:1], T, 0))
    assert abs(still @ c2w[0, :3, 0]) < 1e-6 and still @ turn[:, 2] > 0.9
    for u in (up, np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0])):
        R = views.up_rotation(u)
        want = Rotation.align_vectors([[0.0, 0.0, 1.0]], [u])[0].as_matrix()
        np.testing.assert_allclose(R, want, atol=1e-6)
    np.testing.assert_allclose(views.up_rotation(np.array([0.0, 0.0, -1.0])) @ [0, 0, -1.0], [0, 0, 1.0])
