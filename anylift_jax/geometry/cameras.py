"""Pinhole cameras with OpenCV axes (x right, y down, z forward).

Extrinsics are 4x4 world-to-camera matrices `w2c` (…, 4, 4); `c2w` is their inverse, the convention
MegaSaM / DROID-SLAM write. Intrinsics K are (…, 3, 3) in pixels.
"""
import jax.numpy as jnp


def intrinsics(focal, width, height):
    """K (…, 3, 3) with square pixels and the principal point at the image centre.

    focal: (…,) pixels; width, height: scalars (pixels).
    """
    focal = jnp.asarray(focal, jnp.float32)
    z = jnp.zeros_like(focal)
    o = jnp.ones_like(focal)
    cx = z + width / 2.0
    cy = z + height / 2.0
    return jnp.stack([
        jnp.stack([focal, z, cx], -1),
        jnp.stack([z, focal, cy], -1),
        jnp.stack([z, z, o], -1),
    ], -2)


def rigid(R, t):
    """(…, 3, 3), (…, 3) -> (…, 4, 4) homogeneous transform [R t; 0 1]."""
    top = jnp.concatenate([R, t[..., :, None]], -1)
    bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], R.dtype), top.shape[:-2] + (1, 4))
    return jnp.concatenate([top, bottom], -2)


def invert_rigid(T):
    """Inverse of (…, 4, 4) rigid transforms without a general matrix inverse."""
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    Rt = jnp.swapaxes(R, -1, -2)
    return rigid(Rt, -jnp.einsum("...ij,...j->...i", Rt, t))


def look_at(eye, target, up=(0.0, 0.0, 1.0)):
    """World-to-camera (…, 4, 4) of a camera at `eye` looking at `target`, image-up along world `up`.

    eye, target: (…, 3). OpenCV axes: z towards the target, y (image down) opposite to `up`.
    """
    eye = jnp.asarray(eye, jnp.float32)
    target = jnp.asarray(target, jnp.float32)
    up = jnp.broadcast_to(jnp.asarray(up, jnp.float32), eye.shape)
    z = target - eye
    z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
    x = jnp.cross(z, up)
    x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    y = jnp.cross(z, x)
    R = jnp.stack([x, y, z], -2)  # rows are the camera axes in world coordinates
    return rigid(R, -jnp.einsum("...ij,...j->...i", R, eye))


def transform(T, points):
    """Apply (…, 4, 4) transforms to (…, N, 3) points."""
    return jnp.einsum("...ij,...nj->...ni", T[..., :3, :3], points) + T[..., None, :3, 3]


def project(points, K, w2c, eps=1e-6):
    """Project world points (…, N, 3) to pixels (…, N, 2); also returns camera depth (…, N).

    K: (…, 3, 3), w2c: (…, 4, 4), broadcast against the points' leading dims. Depths are clamped
    to `eps` in the division so points behind the camera stay finite; callers mask them by depth.
    """
    pc = transform(w2c, points)
    depth = pc[..., 2]
    uv = pc[..., :2] / jnp.maximum(depth, eps)[..., None]
    pix = jnp.einsum("...ij,...nj->...ni", K[..., :2, :2], uv) + K[..., None, :2, 2]
    return pix, depth


def pixels_to_rays(pix, K):
    """Pixels (…, N, 2) -> normalised image coordinates (…, N, 2) = K⁻¹ (u, v, 1) with z = 1."""
    f = jnp.stack([K[..., 0, 0], K[..., 1, 1]], -1)[..., None, :]
    c = K[..., None, :2, 2]
    skew = K[..., 0, 1][..., None]
    y = (pix[..., 1] - c[..., 1]) / f[..., 1]
    x = (pix[..., 0] - c[..., 0] - skew * y) / f[..., 0]
    return jnp.stack([x, y], -1)


def backproject(pix, depth, K, c2w):
    """Pixels (…, N, 2) at camera depths (…, N) -> world points (…, N, 3)."""
    xy = pixels_to_rays(pix, K) * depth[..., None]
    pc = jnp.concatenate([xy, depth[..., None]], -1)
    return transform(c2w, pc)


def extrinsics_features(rel, scale=1.0):
    """Relative extrinsics (…, 4, 4) -> (…, 12): the top 3x4 block [R | t/scale], row-major.

    Dividing translations by `scale` ((…) broadcastable without the last axis, e.g. the frame-0
    camera-to-subject distance) keeps the condition free of the unknown metric scale of SLAM cameras.
    """
    scale = jnp.asarray(scale, rel.dtype)[..., None, None]
    top = jnp.concatenate([rel[..., :3, :3], rel[..., :3, 3:] / scale], -1)
    return top.reshape(top.shape[:-2] + (12,))


def trajectory_features(w2c, scale=1.0):
    """The paper's camera-trajectory condition C (Sec. 2.1): (…, T, 4, 4) -> (…, T, 12).

    Each frame's extrinsics are normalised by removing the frame-0 transform, C_t = E_t E_0⁻¹, so
    C_0 = I; `scale` (…) divides the translations (see `extrinsics_features`).
    """
    rel = w2c @ invert_rigid(w2c[..., :1, :, :])
    return extrinsics_features(rel, jnp.asarray(scale)[..., None])
