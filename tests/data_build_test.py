"""Stage-2 training rings are placed exactly as lifting places them (anylift_jax.data.build)."""
import numpy as np

from anylift_jax import lift, skeleton, views
from anylift_jax.data import build, cameras, mocap, render2d
from anylift_jax.geometry import cameras as geo
from anylift_jax.io import archive

LENGTH, STRIDE, V = 64, 32, 4
IMAGE = (1280, 720)


def _render(seed):
    kp3d = mocap.load_shipped("131_01")[:LENGTH + 2 * STRIDE]  # windows at 0, 32, 64 either way
    rng = np.random.default_rng(seed)
    K = cameras.sample_intrinsics(rng, *IMAGE, (45.0, 75.0))
    w2c = cameras.sample_trajectory(rng, kp3d, "track")
    return kp3d, w2c, K


def test_input_rings_are_the_rings_lifting_places():
    kp3d, w2c, K = _render(0)
    noise = render2d.NoiseConfig()
    rings = list(build.input_rings(kp3d, w2c, K, np.random.default_rng(1), noise, IMAGE, LENGTH, STRIDE, V))
    # the same input view, as a keypoint archive clip handed to lifting
    view0 = render2d.render_clip(kp3d, w2c, K, IMAGE, np.random.default_rng(1), noise)
    seen = view0["scores"] > 0
    clip = archive.Clip("c", np.where(seen[..., None], view0["keypoints"], 0.0).astype(np.float32),
                        view0["scores"], np.broadcast_to(view0["intrinsics"], (len(kp3d), 3, 3)),
                        view0["cam_c2w"], np.asarray(IMAGE), 30.0)
    windows = lift.make_windows(0, clip, LENGTH, LENGTH - STRIDE, views.SCORE_THRESHOLD)
    assert [r[0].start for r in rings] == [w.frames[0] for w in windows] == [0, 32, 64]
    off_truth = []
    for (win, view, ring, center), w in zip(rings, windows):
        np.testing.assert_array_equal(view["keypoints"], view0["keypoints"][win])
        w2c_v, _, _ = lift.ring_geometry(w.w2c, w.scale, w.center, w.depth, V)
        np.testing.assert_allclose(ring, np.asarray(w2c_v), atol=1e-4)
        # views 1..V-1 look at the centre, which is on the input view's frame-0 mid-hip ray
        for v in range(1, V):
            c_cam = geo.transform(ring[v, 0], center[None])[0]
            np.testing.assert_allclose(c_cam[:2] / c_cam[2], 0.0, atol=1e-5)
        c_cam = geo.transform(w2c[win][0], center[None])[0]
        np.testing.assert_allclose(c_cam[:2] / c_cam[2], w.center, atol=1e-5)
        off_truth.append(np.linalg.norm(center - skeleton.mid_hip(kp3d[win][0])))
    # the centre is estimated from the noisy 2D (size prior), not the true pelvis
    assert 0.01 < max(off_truth) < 1.5
