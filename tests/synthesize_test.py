"""Stage-1 program end to end at toy sizes: inputs, prior data, resumable SDS, rejection, store."""
import numpy as np
import pytest

from anylift_jax import synthesize
from anylift_jax.data import normalize as nz
from anylift_jax.data import stage1, store
from configs.synth import hop

# ~70 s on 2 shared CPU cores (a prior is trained and SDS compiled on 8 devices).
pytestmark = pytest.mark.slow


def _config(**reject):
    c = hop.get_config()
    c.inputs.update(category="amp_humanoid_run", renders=2)
    c.prior.model.update(d_model=32, num_layers=1, num_heads=2, head_dim=16, ffn_dim=64)
    c.prior.data.update(batch_size=8, num_frames=16, epoch_size=64)
    c.prior.optim.update(warmup_steps=1)
    c.prior.train.update(num_steps=2, log_every=1, checkpoint_every=2)
    c.sds.update(views=4, iterations=3, clips_per_batch=8)
    c.fit.enabled = False
    c.reject.update({"max_error": 1e9, "max_bone_std": 1e9, **reject})
    c.output.update(renders=1, windows_per_shard=4)
    return c


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("synth")
    config = _config()
    return config, workdir, synthesize.run(config, workdir, progress=False)


def test_archive_windows_are_model_space_with_lines_through_the_joints(done):
    config, workdir, _ = done
    src = stage1.ArchiveWindows(workdir / "inputs", 16, 0, ring_views=4, ring_partner_prob=0.5,
                                    epipole_range=3.0, occlusion_prob=0.0, score_threshold=0.3, epoch_size=10)
    clip = stage1.read_inputs(workdir / "inputs")[0]
    item = src[0]
    jm = item["joint_mask"] > 0
    assert item["is_proj"] == 0 and jm.any()
    valid = clip.scores[:16] > 0.3
    x, _ = nz.normalize(clip.keypoints[:16].astype(np.float64), clip.intrinsics[:16].astype(np.float64), valid)
    np.testing.assert_allclose(item["x0"][jm], nz.decompose(x)[jm], atol=1e-4)
    xg = nz.compose(item["x0"])
    dist = np.abs((item["lines"][..., :2] * xg).sum(-1) + item["lines"][..., 2])
    assert dist[jm].max() < 1e-4
    np.testing.assert_allclose(item["cam"][0], np.eye(4)[:3].reshape(12), atol=1e-5)  # frame 0: identity


def test_run_writes_motions_and_a_consistent_multi_view_store(done):
    config, workdir, summary = done
    assert summary["clips"] == 2 and summary["windows"] == 6  # 41 frames -> windows at 0, 16, 25
    assert summary["accepted"] == 6 and summary["store_records"] == 6
    src = store.StoreSource(workdir / "store")
    assert len(src) == 6
    r = src[0]
    assert r["keypoints"].shape == (16, 4, 17, 2) and r["kp3d"].shape == (16, 17, 3)
    # Noise-free reprojection of the recovered motion into every view.
    pc = np.einsum("tvij,tkj->tvki", r["w2c"][..., :3, :3], r["kp3d"]) + r["w2c"][:, :, None, :3, 3]
    ph = np.einsum("tvij,tvkj->tvki", r["intrinsics"], pc)
    seen = r["scores"] > 0
    np.testing.assert_allclose((ph[..., :2] / ph[..., 2:])[seen], r["keypoints"][seen], rtol=1e-4, atol=1e-2)
    # Views 1..3 complete a ring of 4 at 90° around the pelvis as lifting estimates it
    # (`build.input_rings`), stored as the record's ring centre, and follow it without turning.
    # The ring is horizontal in the upright frame estimated from the cameras, a few degrees off
    # the world's Z: azimuths are measured in the plane of the ring views' centres.
    eyes = nz.camera_centers(r["w2c"][:, 1:])  # (T, 3, 3)
    offset = eyes - r["ring_center"][:, None]
    normal = np.cross(eyes[0, 1] - eyes[0, 0], eyes[0, 2] - eyes[0, 0])
    normal /= np.linalg.norm(normal) * np.sign(normal[2])
    assert normal[2] > np.cos(np.radians(10.0))
    flat = offset[0] - np.outer(offset[0] @ normal, normal)
    flat /= np.linalg.norm(flat, axis=-1, keepdims=True)
    turn = np.arctan2(np.cross(flat[:-1], flat[1:]) @ normal, np.sum(flat[:-1] * flat[1:], -1))
    np.testing.assert_allclose(np.mod(turn, 2 * np.pi), np.pi / 2, atol=1e-3)
    np.testing.assert_allclose(offset, np.broadcast_to(offset[:1], offset.shape), atol=1e-4)
    rot = r["w2c"][:, 1:, :3, :3]
    np.testing.assert_allclose(rot, np.broadcast_to(rot[:1], rot.shape), atol=1e-6)
    m = synthesize.load_motions(workdir / "motions", stage1.read_inputs(workdir / "inputs"))
    first = next(iter(m.values()))
    assert first["views"].shape == (3, 4, 16, 17, 2) and np.isfinite(first["kp3d"]).all()


def test_rerun_resumes_and_rejection_is_counted(done):
    config, workdir, summary = done
    motion = workdir / "motions" / "amp_humanoid_run_000.npz"
    before = motion.stat().st_mtime_ns
    assert synthesize.run(config, workdir, progress=False) == summary
    assert motion.stat().st_mtime_ns == before
    strict = _config(max_error=0.0)
    strict.prior_dir = str(workdir / "prior")
    strict_dir = workdir / "strict"
    strict_dir.mkdir()
    (strict_dir / "inputs").symlink_to(workdir / "inputs")
    s = synthesize.run(strict, strict_dir, progress=False)
    assert s["accepted"] == 0 and s["rejected_error"] == 6 and s["store_records"] == 0
    assert not (strict_dir / "store").exists()
