"""Rendering a moving clip to GIF, PNG contact sheet and (with imageio-ffmpeg) MP4."""
from importlib import resources

import numpy as np
import pytest
from PIL import Image, ImageSequence

from anylift_jax import viz
from anylift_jax.geometry import cameras
from anylift_jax.io import archive

T = 6


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    """A lifting output (every 5th frame of the hop) and its input archive clip."""
    root = tmp_path_factory.mktemp("viz")
    with np.load(resources.files("anylift_jax") / "assets/mocap/amp_humanoid_hop.npz") as f:
        kp = np.asarray(f["keypoints3d"][: 5 * T : 5], np.float32)
    angle = np.linspace(0, 0.8, T)
    eye = np.stack([3 * np.cos(angle), 3 * np.sin(angle), np.full(T, 1.5)], -1)
    w2c = cameras.look_at(eye, kp.mean(1))
    K = np.asarray(cameras.intrinsics(1000.0, 1280, 720))
    pix, _ = cameras.project(kp, K, w2c)
    scores = np.ones((T, 17), np.float32)
    scores[2, :5] = 0  # a face that is not detected in frame 2
    clip = archive.Clip("hop", np.asarray(pix), scores, np.tile(K, (T, 1, 1)),
                        np.asarray(cameras.invert_rigid(w2c)), np.array([1280, 720]), 30.0)
    archive.write_clip(root / "hop.npz", clip)
    (root / "out").mkdir()
    np.savez(root / "out/hop.npz", keypoints3d=kp, body_model="anny")
    return root / "out/hop.npz", root / "hop.npz"


def _frames(path):
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def test_gif_with_input(clip_files, tmp_path):
    pred, inp = clip_files
    out = tmp_path / "hop.gif"
    assert viz.main(["--clip", str(pred), "--input", str(inp), "--out", str(out)]) == 0
    frames = _frames(out)
    assert len(frames) == T
    assert frames[0].shape == (viz.PANEL_PX, 2 * viz.PANEL_PX, 3)
    for a, b in zip(frames, frames[1:]):
        assert np.abs(a.astype(int) - b).sum(-1).astype(bool).mean() > 0.001
    # Both panels change: the skeleton (left) and the 2D keypoints (right).
    half = viz.PANEL_PX
    assert (frames[0][:, :half] != frames[-1][:, :half]).any()
    assert (frames[0][:, half:] != frames[-1][:, half:]).any()


def test_png_contact_sheet_without_input(clip_files, tmp_path):
    pred, _ = clip_files
    out = tmp_path / "sheet.png"
    assert viz.main(["--clip", str(pred), "--out", str(out), "--frames", "5"]) == 0
    with Image.open(out) as im:
        sheet = np.asarray(im.convert("RGB"))
    p = viz.PANEL_PX
    assert sheet.shape == (2 * p, 4 * p, 3)  # 5 tiles: 4 in the first row, 1 in the second
    tiles = [sheet[:p, i * p:(i + 1) * p] for i in range(4)] + [sheet[p:, :p]]
    for a, b in zip(tiles, tiles[1:]):
        assert (a != b).any()
    assert (sheet[p:, p:] == 255).all()  # the unused cells stay white


def test_mp4(clip_files, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    pred, inp = clip_files
    out = tmp_path / "hop.mp4"
    assert viz.main(["--clip", str(pred), "--input", str(inp), "--out", str(out)]) == 0
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert n == T


def test_bad_inputs(clip_files, tmp_path, capsys):
    pred, inp = clip_files
    np.savez(tmp_path / "short.npz", keypoints3d=np.zeros((T - 1, 17, 3)))
    assert viz.main(["--clip", str(tmp_path / "short.npz"), "--input", str(inp),
                     "--out", str(tmp_path / "x.gif")]) == 2
    assert "short.npz has 5 frames" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown output type '.avi'"):
        viz.main(["--clip", str(pred), "--out", str(tmp_path / "x.avi")])


def test_body_mesh_is_drawn_from_smpl_parameters(tmp_path):
    """An smpl output with parameters: with --body-path the 3D panel shows the body's vertices
    (orange points) around the skeleton, without it the skeleton only."""
    from anylift_jax.body import model as bm  # noqa: PLC0415
    from anylift_jax.body import synthetic  # noqa: PLC0415

    path = synthetic.write_smpl_file(tmp_path / "m.pkl", seed=0)
    body = bm.get_body_model("smpl", path)
    params = body.init_params((), 2)
    arrays = {"keypoints3d": np.asarray(body.keypoints(params)), "body_model": np.str_("smpl"),
              **body.output_arrays(params)}
    archive.write_output(tmp_path / "c.npz", arrays)
    verts = viz.body_vertices(arrays, "c.npz", path)
    np.testing.assert_allclose(verts, np.asarray(body.vertices(params))[:, ::viz.MESH_STRIDE], atol=1e-6)
    assert viz.body_vertices(arrays, "c.npz", None) is None
    images = {}
    for name, extra in (("mesh", ["--body-path", str(path)]), ("skeleton", [])):
        out = tmp_path / f"{name}.png"
        assert viz.main(["--clip", str(tmp_path / "c.npz"), "--out", str(out), "--frames", "1"] + extra) == 0
        images[name] = np.asarray(Image.open(out).convert("RGB")).astype(int)
    # tab:orange at alpha 0.35 over white is about (255, 210, 171); red bones have r ≈ 214.
    orange = lambda im: ((im[..., 0] > 240) & (im[..., 1] > 150) & (im[..., 1] < 235) & (im[..., 0] - im[..., 2] > 40)).sum()
    # Without the mesh only the anti-aliased edges of the red bones on the white panes come close.
    assert orange(images["mesh"]) > 500 and orange(images["skeleton"]) < 50
