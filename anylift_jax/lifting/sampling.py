"""Sampling the other views of each window with the Stage-2 model and triangulating them
(Sec. 2.2): the virtual ring (docs/design.md "Several views"), DDIM with the input view inpainted,
each step's generated views made consistent with one 3D motion, weighted triangulation."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax import sharding, skeleton, views
from anylift_jax.data.normalize import compose, decompose
from anylift_jax.diffusion import samplers
from anylift_jax.geometry import triangulate as tri
from anylift_jax.geometry.cameras import project
from anylift_jax.lifting.windows import blend_weights, make_windows


# Nearest a triangulated keypoint may lie in front of a ring camera for `consistent` to use its
# projection there, m (the ring's cameras stand metres away).
MIN_VIEW_DEPTH = 0.1


def ring_geometry(w2c, scale, center, track, num_views):
    """The virtual ring of one window (docs/design.md "Several views"), from its input cameras
    w2c (T, 4, 4), s₀ (), c₀ (2,) and estimated pelvis track (T, 3) (`Window.track`) -> all
    views' w2c (V, T, 4, 4), model intrinsics A (V, 3, 3) and camera features (V, T, 12). jax."""
    w2c_v, _, d0 = views.window_ring(w2c, track, num_views)
    return w2c_v, views.ring_intrinsics(scale, center, num_views), views.camera_features(w2c_v, d0)


def triangulate_views(xg, A, w2c_v, valid, view_weight):
    """World keypoints (B, T, K, 3) from every view's global model coordinates xg (B, V, T, K, 2)
    seen through A (B, V, 3, 3) and w2c_v (B, V, T, 4, 4) (`ring_geometry`). The input view
    weighs valid (B, T, K) (1 observed, 0 not), each generated view `view_weight`. jax."""
    B, V, T, K, _ = xg.shape
    weights = jnp.concatenate([valid[:, :, None], jnp.full((B, T, V - 1, K), view_weight)], 2)
    kp3d = tri.triangulate(xg.swapaxes(1, 2), jnp.broadcast_to(A[:, None], (B, T, V, 3, 3)),
                           w2c_v.swapaxes(1, 2), weights)
    chex.assert_shape(kp3d, (B, T, K, 3))
    return kp3d


def consistent(x0, A, w2c_v, valid, view_weight):
    """Decomposed model-space views x0 (B, V, T, K, 2) with the generated views (1…V−1) replaced
    by the projections of their triangulation (`triangulate_views`; view 0, the input, is kept).
    A view's frame keeps x0 where that triangulation is not finite or not in front of the view's
    camera (MIN_VIEW_DEPTH): its projection would be meaningless.

    Applied to every DDIM step's X̂_0, it makes the network's next step start from views that
    agree with one 3D motion and with the observed input view, rather than triangulating
    disagreeing views once at the end. Not in the paper. jax.
    """
    kp3d = triangulate_views(compose(x0), A, w2c_v, valid, view_weight)
    pix, depth = project(kp3d[:, None], A[:, :, None], w2c_v)
    ok = jnp.all((depth > MIN_VIEW_DEPTH) & jnp.all(jnp.isfinite(pix), -1), -1)[..., None, None]  # (B, V, T, 1, 1)
    ok = ok & (jnp.arange(x0.shape[1]) > 0)[:, None, None, None]
    return jnp.where(ok, decompose(pix), x0)


def make_lift_fn(config, graphdef, rest, mesh, lc):
    """Jitted `fn(params, batch of windows, key) -> (kp3d (B, T, K, 3), views (B, V, T, K, 2))`.

    config: the model's training config. lc: the `lift` section of the lifting config; its
    generated_view_weight is the triangulation weight of the generated views relative to a detected
    input keypoint of confidence 1, and with consistent_views every DDIM step's X̂_0 of the
    generated views is replaced by the projection of its triangulation (`consistent`). The batch
    axis of the windows is sharded over the mesh's 'data' axis.
    """
    num_views = config.model.num_views
    geometry = jax.vmap(functools.partial(ring_geometry, num_views=num_views))
    view_weight = lc.generated_view_weight

    def fn(params, w, key):
        B, T, K, _ = w["x"].shape
        w2c_v, A, cam = geometry(w["w2c"], w["scale"], w["center"], w["track"])
        x0 = jnp.zeros((B, num_views, T, K, 2)).at[:, 0].set(w["x"])
        joint_mask = jnp.ones((B, num_views, T, K)).at[:, 0].set(w["valid"])
        batch = {"x0": x0, "cam": cam, "mask": w["mask"], "joint_mask": joint_mask}
        step = functools.partial(consistent, A=A, w2c_v=w2c_v, valid=w["valid"], view_weight=view_weight)
        xg = compose(samplers.sample_model(config, graphdef, rest, params, batch, key,
                                           project=step if lc.consistent_views else None))
        return triangulate_views(xg, A, w2c_v, w["valid"], view_weight), xg

    data = sharding.data_sharded(mesh)
    repl = sharding.replicated(mesh)
    return jax.jit(fn, in_shardings=(repl, data, repl), out_shardings=(data, data))


def lift_keypoints(clips, lift_fn, params, length, lc, mesh, key, num_object_keypoints=0):
    """World keypoints (T, K, 3) of each clip: windows of `length` batched across clips, blended back.

    lc: the `lift` section of the lifting config. K = 17 + num_object_keypoints (`make_windows`).
    """
    windows = [w for i, c in enumerate(clips)
               for w in make_windows(i, c, length, lc.overlap, lc.score_threshold, num_object_keypoints)]
    batch = -(-lc.batch_size // mesh.size) * mesh.size  # a multiple of the devices
    K = skeleton.NUM_JOINTS + num_object_keypoints
    acc = [np.zeros(c.keypoints.shape[:1] + (K, 3), np.float64) for c in clips]
    wsum = [np.zeros(c.keypoints.shape[:1], np.float64) for c in clips]
    ramp = blend_weights(length, lc.overlap)
    for start in range(0, len(windows), batch):
        chunk = windows[start:start + batch]
        chunk = chunk + [chunk[-1]] * (batch - len(chunk))  # fixed batch shape: one compilation
        arrays = {f: np.stack([getattr(w, f) for w in chunk]) for f in ("x", "valid", "mask", "w2c", "scale", "center", "track")}
        arrays = sharding.shard_batch(arrays, mesh)  # multi-process jit takes no numpy with a sharding
        kp3d, _ = lift_fn(params, arrays, jax.random.fold_in(key, start))
        kp3d = np.asarray(jax.device_get(kp3d))
        for w, k in zip(windows[start:start + batch], kp3d):
            real = w.mask > 0
            wt = (ramp * w.mask)[real]
            np.add.at(acc[w.clip], w.frames[real], k[real] * wt[:, None, None])
            np.add.at(wsum[w.clip], w.frames[real], wt)
    return [(a / s[:, None, None]).astype(np.float32) for a, s in zip(acc, wsum)]
