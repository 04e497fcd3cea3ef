"""AMASS-style SMPL npz reader: keypoints against PyTorch smplx, 30 fps resampling, bad files, CLI."""
import numpy as np
import pytest

from anylift_jax.body import model as bm
from anylift_jax.body import synthetic
from anylift_jax.data import amass, mocap

# smplx's SMPL joints (24 regressor joints, then nose, r_eye, l_eye, r_ear, l_ear vertices) of the
# COCO-17 keypoints, in COCO order.
SMPLX_OF_COCO = [24, 26, 25, 28, 27, 16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8]


@pytest.fixture(scope="module")
def smpl(tmp_path_factory):
    path = synthetic.write_smpl_file(tmp_path_factory.mktemp("smpl") / "m.pkl", seed=5)
    return path, bm.get_body_model("smpl", path)


def _motion(T, width, num_betas, seed=0):
    """Smooth random poses (T, width), trans (T, 3), betas (num_betas,): sums of slow sinusoids."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, T)[:, None]

    def smooth(n, amp):
        a, f, p = rng.normal(0, amp, (3, n)), rng.uniform(0.3, 1.5, (3, n)), rng.uniform(0, 6.3, (3, n))
        return sum(a[i] * np.sin(2 * np.pi * f[i] * t + p[i]) for i in range(3))

    poses = smooth(width, 0.3)
    poses[:, 0] += np.pi / 2  # AMASS root orientations turn SMPL's Y-up body Z up
    trans = smooth(3, 0.5) + np.array([0.0, 0.0, 0.9])
    return {"poses": poses.astype(np.float32), "trans": trans.astype(np.float32),
            "betas": rng.normal(0, 1.0, num_betas).astype(np.float32)}


def _write(path, motion, fps, **extra):
    np.savez(path, mocap_framerate=np.float64(fps), gender=np.asarray("female"),
             dmpls=np.zeros((len(motion["poses"]), 8), np.float32), **motion, **extra)
    return path


def _smplx_coco(pkl, motion, num_betas=10):
    """Reference COCO-17 keypoints (T, 17, 3) from PyTorch smplx, poses mapped to SMPL by hand."""
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    poses, T = motion["poses"], len(motion["poses"])
    body_pose = np.concatenate([poses[:, 3:66], np.zeros((T, 6), np.float32)], 1)  # SMPL+H: no fingers
    betas = np.zeros((T, num_betas), np.float32)
    b = motion["betas"][:num_betas]
    betas[:, : len(b)] = b
    ref = smplx.SMPL(model_path=pkl, batch_size=T)
    with torch.no_grad():
        out = ref(global_orient=torch.tensor(poses[:, :3]), body_pose=torch.tensor(body_pose[:, :69]),
                  betas=torch.tensor(betas), transl=torch.tensor(motion["trans"]))
    return out.joints.numpy()[:, SMPLX_OF_COCO]


@pytest.mark.parametrize("width,fps,num_betas", [(156, 60.0, 16), (72, 30.0, 8)])
def test_keypoints_match_pytorch_smplx(tmp_path, smpl, width, fps, num_betas):
    """SMPL+H at 60 fps (16 betas truncated) keeps every second frame exactly; SMPL at 30 fps
    (8 betas zero-padded) keeps all. Small chunks exercise the chunked, padded evaluation."""
    pkl, body = smpl
    motion = _motion(41, width, num_betas)
    if width == 72:
        motion["poses"][:, 66:] = 0.0  # SMPL's hand joints, which SMPL+H files do not carry
    kp = amass.load_amass(_write(tmp_path / "clip.npz", motion, fps), body, chunk=8)
    step = int(fps // 30)
    ref = _smplx_coco(pkl, {k: v[::step] if k != "betas" else v for k, v in motion.items()})
    assert kp.dtype == np.float32 and kp.shape == ref.shape == (len(range(0, 41, step)), 17, 3)
    assert np.abs(kp - ref).max() < 1e-4
    # Z up: the head is above the ankles in every frame.
    assert (kp[:, 0, 2] > kp[:, 15:, 2].max(1)).all()


def test_resampling_to_30_fps(tmp_path, smpl):
    """At 45 fps output frame k sits at source frame 1.5 k: exact on even k, the mean of the two
    neighbouring source frames on odd k. At 120 fps: one frame in four, the last inside the clip."""
    pkl, body = smpl
    motion = _motion(20, 156, 16, seed=1)
    ref = _smplx_coco(pkl, motion)
    kp = amass.load_amass(_write(tmp_path / "a.npz", motion, 45.0), body)
    assert kp.shape == (int(19 * 30 / 45) + 1, 17, 3) == (13, 17, 3)
    assert np.abs(kp[0::2] - ref[0::3]).max() < 1e-4
    assert np.abs(kp[1::2] - 0.5 * (ref[1::3][:6] + ref[2::3][:6])).max() < 1e-4
    kp = amass.load_amass(_write(tmp_path / "b.npz", motion, 120.0), body)
    assert kp.shape == (5, 17, 3)  # source frames 0, 4, 8, 12, 16 of 0..19
    assert np.abs(kp - ref[0:17:4]).max() < 1e-4


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.pop("trans"), r"bad\.npz: missing key 'trans'"),
    (lambda m: m.update(poses=m["poses"][:, :70]), r"bad\.npz: key 'poses': expected a float array"),
    (lambda m: m.update(trans=m["trans"][:-1]), r"bad\.npz: key 'trans': expected shape \(T, 3\) with T=10"),
    (lambda m: m.update(betas=m["betas"][None]), r"bad\.npz: key 'betas': expected shape"),
    (lambda m: m.update(poses=np.array([_Evil()] * 10, dtype=object)), r"bad\.npz: key 'poses': holds a pickled"),
    (lambda m: m.update(mocap_framerate=np.float64(0.0)), r"bad\.npz: key 'mocap_framerate': expected a positive"),
    (lambda m: m.update(mocap_framerate=np.float64(-60.0)), r"bad\.npz: key 'mocap_framerate': expected a positive"),
    (lambda m: m.update(mocap_framerate=np.asarray("60")), r"bad\.npz: key 'mocap_framerate': expected a positive"),
    (lambda m: m["trans"].__setitem__((3, 1), np.nan), r"bad\.npz: key 'trans': non-finite"),
])
def test_malformed_files(tmp_path, smpl, capsys, edit, match):
    motion = {**_motion(10, 156, 16), "mocap_framerate": np.float64(60.0)}
    edit(motion)
    np.savez(tmp_path / "bad.npz", **motion)
    with pytest.raises(ValueError, match=match):
        amass.load_amass(tmp_path / "bad.npz", smpl[1])
    assert "unpickled" not in capsys.readouterr().out


def test_other_keys_are_never_unpickled(tmp_path, smpl, capsys):
    """A pickled `gender` (or any key the reader does not need) is ignored, never loaded."""
    motion = _motion(10, 156, 16)
    kp = amass.load_amass(_write(tmp_path / "c.npz", motion, 60.0, surface_model_type=np.array([_Evil()])), smpl[1])
    assert kp.shape == (5, 17, 3)
    assert "unpickled" not in capsys.readouterr().out


def test_cli_writes_a_clip_load_npz_reads(tmp_path, smpl, capsys):
    pkl, body = smpl
    src = _write(tmp_path / "in.npz", _motion(30, 156, 16, seed=2), 60.0)
    out = tmp_path / "out.npz"
    assert amass.main([str(src), "--smpl", str(pkl), "--out", str(out)]) == 0
    kp, fps = mocap.load_npz(out)
    assert fps == 30.0 and kp.shape == (15, 17, 3)
    np.testing.assert_array_equal(kp, amass.load_amass(src, body))
    np.savez(tmp_path / "bad.npz", poses=np.zeros((3, 72), np.float32))
    assert amass.main([str(tmp_path / "bad.npz"), "--smpl", str(pkl), "--out", str(out)]) == 2
    assert "bad.npz: missing key 'trans'" in capsys.readouterr().err
