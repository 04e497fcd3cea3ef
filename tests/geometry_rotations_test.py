"""Rotation conversions against scipy.spatial.transform.Rotation and cv2.Rodrigues (float32).

Tolerances asserted (float32 in, float64 references), all absolute: 1e-6 for matrices,
axis-angle (also at angles 0, 1e-8 … 1e-3 and π − 1e-2 … π), quaternions, the geodesic angle
(rad) and Gram–Schmidt 6D against numpy's QR; observed maxima ≈ 3e-7. Gradients finite at exactly 0 and π, and equal the
closed-form derivative at 0.
"""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from anylift_jax.geometry import rotations as rot

PI = np.pi


def _axis_angles(seed, n=64):
    """Random axes with random angles plus the awkward ones: 0, tiny, around the Taylor switch, π."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    special = [0.0, 1e-8, 1e-6, 9e-4, 1.1e-3, 1e-2, PI - 1e-2, PI - 1e-4, PI - 1e-6, PI]
    angles = np.concatenate([rng.uniform(0, PI, n - len(special)), special])
    return (axes * angles[:, None]).astype(np.float64)


def _canonical_quat_wxyz(xyzw):
    q = np.roll(xyzw, 1, axis=-1)
    return np.where(q[..., :1] < 0, -q, q)


def _sign_aligned(q, ref):
    """q with each row's sign flipped to agree with ref (q ≡ −q; w ≈ 0 at θ = π is ambiguous)."""
    return q * np.where(np.sum(q * ref, -1) < 0, -1.0, 1.0)[..., None]


def test_axis_angle_to_matrix_matches_scipy_and_cv2_rodrigues():
    aa = _axis_angles(0)
    R = np.asarray(jax.jit(rot.axis_angle_to_matrix)(jnp.asarray(aa, jnp.float32)))
    np.testing.assert_allclose(R, Rotation.from_rotvec(aa).as_matrix(), atol=1e-6)
    R_cv = np.stack([cv2.Rodrigues(a)[0] for a in aa])
    np.testing.assert_allclose(R, R_cv, atol=1e-6)


def test_matrix_to_axis_angle_matches_scipy_and_cv2_including_near_pi():
    aa_ref = _axis_angles(1)
    R = Rotation.from_rotvec(aa_ref).as_matrix()
    aa = np.asarray(jax.jit(rot.matrix_to_axis_angle)(jnp.asarray(R, jnp.float32)))
    aa_cv = np.stack([cv2.Rodrigues(m)[0][:, 0] for m in R])
    theta = np.linalg.norm(aa_ref, axis=-1)
    # At θ = π, v and −v are the same rotation: compare up to that sign there.
    near_pi = theta > PI - 1e-3
    sign = np.where(near_pi & (np.sum(aa * aa_ref, -1) < 0), -1.0, 1.0)[:, None]
    np.testing.assert_allclose(aa * sign, aa_ref, atol=1e-6)
    sign_cv = np.where(near_pi & (np.sum(aa * aa_cv, -1) < 0), -1.0, 1.0)[:, None]
    np.testing.assert_allclose(aa * sign_cv, aa_cv, atol=1e-6)
    assert np.all(np.linalg.norm(aa, axis=-1) <= PI + 1e-6)


def test_quaternion_conversions_match_scipy():
    aa = _axis_angles(2)
    r = Rotation.from_rotvec(aa)
    q_ref = _canonical_quat_wxyz(r.as_quat())
    q_from_aa = np.asarray(rot.axis_angle_to_quaternion(jnp.asarray(aa, jnp.float32)))
    np.testing.assert_allclose(_sign_aligned(q_from_aa, q_ref), q_ref, atol=1e-6)
    q_from_R = np.asarray(rot.matrix_to_quaternion(jnp.asarray(r.as_matrix(), jnp.float32)))
    np.testing.assert_allclose(_sign_aligned(q_from_R, q_ref), q_ref, atol=1e-6)
    assert np.all(q_from_R[:, 0] >= 0)
    # Un-normalised input quaternions are accepted.
    scaled = jnp.asarray(q_ref * 3.7, jnp.float32)
    np.testing.assert_allclose(rot.quaternion_to_matrix(scaled), r.as_matrix(), atol=1e-6)
    aa_back = np.asarray(rot.quaternion_to_axis_angle(scaled))
    np.testing.assert_allclose(Rotation.from_rotvec(aa_back).as_matrix(), r.as_matrix(), atol=1e-6)


def test_rot6d_gram_schmidt_matches_qr_and_round_trips():
    rng = np.random.default_rng(3)
    d6 = rng.normal(size=(50, 6))
    R = np.asarray(rot.rot6d_to_matrix(jnp.asarray(d6, jnp.float32)))
    # Gram–Schmidt of two columns = QR with a positive-diagonal R factor; third column = cross.
    Q, Rq = np.linalg.qr(np.stack([d6[:, :3], d6[:, 3:]], -1))
    Q = Q * np.sign(np.diagonal(Rq, axis1=-2, axis2=-1))[:, None, :]
    ref = np.concatenate([Q, np.cross(Q[..., 0], Q[..., 1])[..., None]], -1)
    np.testing.assert_allclose(R, ref, atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-6)
    R_true = Rotation.random(20, random_state=4).as_matrix().astype(np.float32)
    d6_true = rot.matrix_to_rot6d(jnp.asarray(R_true))
    np.testing.assert_allclose(d6_true[:, :3], R_true[:, :, 0])
    np.testing.assert_allclose(rot.rot6d_to_matrix(d6_true), R_true, atol=1e-6)


def test_geodesic_angle_matches_scipy_magnitude():
    aa = _axis_angles(5)
    R1 = Rotation.random(len(aa), random_state=6)
    R2 = R1 * Rotation.from_rotvec(aa)
    ang = np.asarray(rot.geodesic_angle(jnp.asarray(R1.as_matrix(), jnp.float32),
                                        jnp.asarray(R2.as_matrix(), jnp.float32)))
    ref = (R1.inv() * R2).magnitude()
    np.testing.assert_allclose(ang, ref, atol=1e-6)


def test_gradients_are_finite_at_zero_and_pi():
    axis = jnp.asarray([0.48, -0.6, 0.64], jnp.float32)
    aa = axis * jnp.asarray([0.0, 1e-7, PI - 1e-6, PI], jnp.float32)[:, None]
    R = rot.axis_angle_to_matrix(aa)
    fns = {
        "axis_angle_to_matrix": (lambda x, m: jnp.sum(rot.axis_angle_to_matrix(x) * m), aa),
        "axis_angle_to_quaternion": (lambda x, m: jnp.sum(rot.axis_angle_to_quaternion(x)), aa),
        "matrix_to_axis_angle": (lambda x, m: jnp.sum(rot.matrix_to_axis_angle(x)), R),
        "matrix_to_quaternion": (lambda x, m: jnp.sum(rot.matrix_to_quaternion(x)), R),
        "quaternion_to_axis_angle": (lambda x, m: jnp.sum(rot.quaternion_to_axis_angle(x)),
                                     rot.axis_angle_to_quaternion(aa)),
        "geodesic_self": (lambda x, m: rot.geodesic_angle(x, m), R),
        "geodesic_to_identity": (lambda x, m: rot.geodesic_angle(x, jnp.eye(3)), R),
        "rot6d": (lambda x, m: jnp.sum(rot.rot6d_to_matrix(x)), rot.matrix_to_rot6d(R)),
    }
    for name, (f, x) in fns.items():
        g = jax.jit(jax.vmap(jax.grad(f)))(x, R)
        assert np.all(np.isfinite(np.asarray(g))), name


def test_derivatives_at_identity_equal_the_closed_form():
    # dR/d(aa_k) at 0 is [e_k]ₓ; the inverse map's derivative along [δ]ₓ is δ.
    J = jax.jacfwd(rot.axis_angle_to_matrix)(jnp.zeros(3))
    np.testing.assert_allclose(np.moveaxis(np.asarray(J), -1, 0), np.asarray(rot.skew(jnp.eye(3))), atol=1e-7)
    delta = jnp.asarray([0.3, -0.2, 0.5])
    _, tangent = jax.jvp(rot.matrix_to_axis_angle, (jnp.eye(3),), (rot.skew(delta),))
    np.testing.assert_allclose(tangent, delta, atol=1e-6)


def test_batched_jit_and_vmap_agree_with_eager():
    aa = jnp.asarray(_axis_angles(7, n=24).reshape(2, 12, 3), jnp.float32)
    R = rot.axis_angle_to_matrix(aa)
    assert R.shape == (2, 12, 3, 3)
    for f, x in [(rot.axis_angle_to_matrix, aa), (rot.matrix_to_axis_angle, R),
                 (rot.matrix_to_quaternion, R), (rot.matrix_to_rot6d, R),
                 (lambda m: rot.geodesic_angle(m, jnp.eye(3)), R)]:
        eager = f(x)
        np.testing.assert_allclose(jax.jit(f)(x), eager, atol=1e-6)
        np.testing.assert_allclose(jax.vmap(f)(x), eager, atol=1e-6)
        assert eager.dtype == jnp.float32
