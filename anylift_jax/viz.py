"""Render a lifted clip: 3D skeleton with the camera trajectory, next to the input 2D keypoints.

    python -m anylift_jax.viz --clip OUT/clip.npz [--input ARCHIVE/clip.npz] --out FILE
        [--frames N] [--fps FPS] [--body-path SMPL_FILE]

FILE ending in `.gif` (Pillow), `.mp4` (H.264 through the ffmpeg binary of the PyPI package
`imageio-ffmpeg`, needed only for MP4) or `.png` (a contact sheet of N evenly spaced frames,
default 8). The 3D panel shows the COCO-17 skeleton (`skeleton.BONES`), the path of the mid-hip so
far and, with `--input`, the camera centres of `cam_c2w` with the current camera's viewing
direction; when the output holds body-model parameters (`body_model` anny, or smpl with
`--body-path`), the body surface is drawn as every MESH_STRIDE-th vertex of the mesh (a
point cloud: matplotlib draws tens of thousands of triangles at seconds per frame); the 2D panel shows the input keypoints (score 0 hidden) in the image frame. Rendering is
matplotlib with the Agg backend, so no display is needed.

`skeleton_sheet` draws generated next to real 2D skeleton sequences (the trainer's sample sheets).
"""
import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from PIL import Image  # noqa: E402

from anylift_jax import skeleton  # noqa: E402
from anylift_jax.evaluate import load_keypoints3d  # noqa: E402
from anylift_jax.io.archive import ArchiveError, load_npz, read_clip  # noqa: E402

PANEL_PX = 400  # each panel is PANEL_PX × PANEL_PX pixels
DPI = 100
SHEET_COLUMNS = 4
LEFT, RIGHT = "tab:blue", "tab:red"
MESH_STRIDE = 8
FOLLOW_HALF_M = 1.25  # the followed 3D view spans at least 2.5 m on each axis
GRID_M = 0.5  # floor grid spacing
# Parameter keys of a lifting output per body model (`output_arrays` of anylift_jax.body.model).
BODY_KEYS = {"anny": {"global_rotation", "body_pose", "shape", "global_translation"},
             "smpl": {"global_orient", "body_pose", "betas", "transl"}}


def _bone_colour(a, b):
    name = skeleton.NAMES[b]
    return LEFT if name.startswith("l_") else RIGHT if name.startswith("r_") else "0.3"


class _Renderer:
    """One matplotlib figure whose artists are updated frame by frame (much faster than
    redrawing). kp3d (T, 17, 3) world metres; clip: the input io.archive.Clip or None; vertices:
    (T, N, 3) body surface points or None."""

    def __init__(self, kp3d, clip=None, vertices=None, confidence=None):
        self.kp3d = np.asarray(kp3d, np.float32)
        self.clip = clip
        self.vertices = vertices
        self.confidence = confidence
        panels = 1 if clip is None else 2
        self.fig = plt.figure(figsize=(panels * PANEL_PX / DPI, PANEL_PX / DPI), dpi=DPI)
        ax = self.fig.add_subplot(1, panels, 1, projection="3d")
        self.ax3d = ax
        self.root = skeleton.mid_hip(self.kp3d)
        cam = None if clip is None else clip.cam_c2w[:, :3, 3]
        # A cube of equal metric axes that follows the person (floor at z = 0): a 1.7 m body stays
        # large however far the camera or the path goes; what leaves the cube is clipped.
        extent = (self.kp3d.max(1) - self.kp3d.min(1)).max()
        self.half = max(FOLLOW_HALF_M, 0.6 * float(extent))
        z0 = min(0.0, float(self.kp3d[..., 2].min()))
        ax.set_zlim(z0, z0 + 2 * self.half)
        ax.set_box_aspect((1.0, 1.0, 1.0), zoom=1.1)
        self._follow(0)
        # The floor (z = 0) as a grid over the whole path, so the motion reads against the ground.
        lo, hi = self.root[:, :2].min(0) - self.half, self.root[:, :2].max(0) + self.half
        # Lines of many points: axis-limit clipping drops points, so a two-point line would vanish.
        xs, ys = (np.arange(np.floor(lo[i] / GRID_M), np.ceil(hi[i] / GRID_M) + 1) * GRID_M for i in (0, 1))
        fine_x, fine_y = (np.arange(lo[i], hi[i], 0.05) for i in (0, 1))
        for x in xs:
            ax.plot(np.full_like(fine_y, x), fine_y, 0.0 * fine_y, color="0.6", lw=0.6, axlim_clip=True)
        for y in ys:
            ax.plot(fine_x, np.full_like(fine_x, y), 0.0 * fine_x, color="0.6", lw=0.6, axlim_clip=True)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # white panes: the floor grid is the reference
            axis.set_pane_color((1.0, 1.0, 1.0, 0.0))
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.set_zlabel("z (m)")
        self.bones3d = [ax.plot([], [], [], color=_bone_colour(a, b), lw=2)[0]
                        for a, b in skeleton.BONES]
        self.trail = ax.plot([], [], [], color="0.6", lw=1, axlim_clip=True)[0]
        if vertices is not None:
            self.mesh = ax.plot([], [], [], ".", color="tab:orange", ms=1, alpha=0.35)[0]
        self.title = ax.set_title("")
        if clip is not None:
            ax.plot(*cam.T, color="tab:green", lw=1, alpha=0.6, axlim_clip=True)
            self.cam_dot = ax.plot([], [], [], "o", color="tab:green", ms=4, axlim_clip=True)[0]
            self.cam_ray = ax.plot([], [], [], color="tab:green", lw=1.5, axlim_clip=True)[0]
            self.ray_len = 0.9 * self.half
            ax2 = self.fig.add_subplot(1, 2, 2)
            width, height = (int(v) for v in clip.image_size)
            ax2.set_xlim(0, width)
            ax2.set_ylim(height, 0)
            ax2.set_aspect("equal")
            ax2.set_title("input 2D keypoints")
            self.bones2d = [ax2.plot([], [], color=_bone_colour(a, b), lw=2)[0]
                            for a, b in skeleton.BONES]
            self.dots2d = ax2.plot([], [], "o", color="k", ms=3)[0]
        self.fig.tight_layout()
        self.fig.subplots_adjust(top=0.9)  # room for the 3D panel's title

    def _follow(self, t):
        """Centre the 3D view's horizontal axes on the person at frame t."""
        cx, cy = self.root[t, :2]
        self.ax3d.set_xlim(cx - self.half, cx + self.half)
        self.ax3d.set_ylim(cy - self.half, cy + self.half)

    def render(self, t):
        """RGB image (H, W, 3) uint8 of frame t."""
        kp = self.kp3d[t]
        self._follow(t)
        for line, (a, b) in zip(self.bones3d, skeleton.BONES):
            line.set_data_3d(kp[[a, b], 0], kp[[a, b], 1], kp[[a, b], 2])
        self.trail.set_data_3d(*self.root[: t + 1].T)
        if self.vertices is not None:
            self.mesh.set_data_3d(*self.vertices[t].T)
        conf = "" if self.confidence is None else f", confidence {self.confidence[t]:.2f}"
        self.title.set_text(f"frame {t}{conf}")
        if self.clip is not None:
            centre = self.clip.cam_c2w[t, :3, 3]
            # The camera is usually outside the followed cube: a line from the person towards it.
            to_cam = centre - self.root[t]
            ray = np.stack([self.root[t], self.root[t] + self.ray_len * to_cam / max(np.linalg.norm(to_cam), 1e-6)])
            self.cam_dot.set_data_3d(*centre[:, None])
            self.cam_ray.set_data_3d(*ray.T)
            seen = self.clip.scores[t] > 0
            pix = np.where(seen[:, None], self.clip.keypoints[t], np.nan)
            for line, (a, b) in zip(self.bones2d, skeleton.BONES):
                line.set_data(pix[[a, b], 0], pix[[a, b], 1])
            self.dots2d.set_data(pix[:, 0], pix[:, 1])
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def close(self):
        plt.close(self.fig)


def render_frames(kp3d, clip=None, frames=None, vertices=None, confidence=None):
    """Yield RGB images (H, W, 3) uint8 of the given frame indices (default: all)."""
    renderer = _Renderer(kp3d, clip, vertices, confidence)
    try:
        for t in range(len(renderer.kp3d)) if frames is None else frames:
            yield renderer.render(int(t))
    finally:
        renderer.close()


def write_gif(images, path, fps):
    """Animated GIF, looping. Pillow merges identical consecutive frames."""
    images = [Image.fromarray(im) for im in images]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)


def write_mp4(images, path, fps):
    """H.264 MP4 through imageio-ffmpeg's bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise SystemExit(f"{path}: writing MP4 needs the PyPI package imageio-ffmpeg "
                         "(pip install imageio-ffmpeg); or write a .gif") from None
    images = iter(images)
    first = next(images)
    writer = imageio_ffmpeg.write_frames(str(path), (first.shape[1], first.shape[0]), fps=fps,
                                         macro_block_size=1)
    writer.send(None)
    writer.send(np.ascontiguousarray(first))
    for im in images:
        writer.send(np.ascontiguousarray(im))
    writer.close()


def write_contact_sheet(images, path, columns=SHEET_COLUMNS):
    """Tile images row by row (at most `columns` per row) into one PNG."""
    images = list(images)
    h, w, _ = images[0].shape
    cols = min(columns, len(images))
    rows = -(-len(images) // cols)
    sheet = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    Image.fromarray(sheet).save(path)


SAMPLE_CELL_PX = 160  # each cell of a `skeleton_sheet` is SAMPLE_CELL_PX × SAMPLE_CELL_PX pixels
REAL_GREY = "0.75"


def _segments(kp, drawn):
    """(S, 2, 2) bone segments of kp (K, 2) whose two joints are both `drawn` (K,) bool."""
    bones = [(a, b) for a, b in skeleton.BONES if drawn[a] and drawn[b]]
    return np.array([kp[[a, b]] for a, b in bones]).reshape(-1, 2, 2), bones


def skeleton_sheet(real, generated, visible, labels, frames=4):
    """Contact sheet (R · SAMPLE_CELL_PX, frames · SAMPLE_CELL_PX, 3) uint8 of 2D skeleton sequences.

    real, generated: (R, T, 17, 2) global 2D keypoints in image-like axes (y down); visible (R, T, 17)
    bool: where the real joint is observed. Row r shows `frames` evenly spaced frames of sequence r
    among those with an observed joint: the real skeleton thick in grey, the generated one on top in
    left/right colours, both in the same square axes (one per row, spanning both, so a generated
    sequence that drifts or shrinks is visible as such). labels: R strings written in each row's
    first cell.
    """
    real, generated = np.asarray(real, np.float32), np.asarray(generated, np.float32)
    visible = np.asarray(visible, bool)
    rows = len(real)
    fig = plt.figure(figsize=(frames * SAMPLE_CELL_PX / DPI, rows * SAMPLE_CELL_PX / DPI), dpi=DPI)
    axes = fig.subplots(rows, frames, squeeze=False)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=1.0, wspace=0.02, hspace=0.02)
    for r in range(rows):
        shown = np.flatnonzero(visible[r].any(-1))
        ts = shown[np.unique(np.linspace(0, len(shown) - 1, frames).round().astype(int))] if len(shown) else []
        pts = np.concatenate([real[r][ts][visible[r][ts]], generated[r][ts].reshape(-1, 2)])
        pts = pts[np.isfinite(pts).all(-1)]
        centre = (pts.max(0) + pts.min(0)) / 2 if len(pts) else np.zeros(2)
        half = 0.55 * max((pts.max(0) - pts.min(0)).max() if len(pts) else 0.0, 1e-3)
        for c, ax in enumerate(axes[r]):
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] + half, centre[1] - half)
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(ts):
                continue
            t = ts[c]
            segs, _ = _segments(real[r, t], visible[r, t])
            ax.add_collection(LineCollection(segs, colors=REAL_GREY, linewidths=4))
            segs, bones = _segments(generated[r, t], np.ones(real.shape[2], bool))
            ax.add_collection(LineCollection(segs, colors=[_bone_colour(a, b) for a, b in bones], linewidths=1.5))
            ax.text(0.97, 0.97, f"t={t}", transform=ax.transAxes, ha="right", va="top", fontsize=7)
        axes[r, 0].text(0.03, 0.97, labels[r], transform=axes[r, 0].transAxes, va="top", fontsize=7)
    axes[-1, 0].text(0.03, 0.03, "grey: real\ncolour: generated", transform=axes[-1, 0].transAxes, fontsize=7)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def body_vertices(arrays, name, body_path=None, stride=MESH_STRIDE):
    """(T, N, 3) every `stride`-th mesh vertex of a lifting output's body, or None when it holds no
    body parameters (`body_model` "none" or absent, or none of the model's parameter keys) or is
    SMPL without `body_path`. Parameters that are present but malformed raise ValueError."""
    import jax  # noqa: PLC0415  (the skeleton-only video needs no jax)

    from anylift_jax.body.model import get_body_model  # noqa: PLC0415

    kind = str(arrays.get("body_model", "none"))
    if kind not in BODY_KEYS or not BODY_KEYS[kind] & set(arrays) or (kind == "smpl" and body_path is None):
        return None
    body = get_body_model(kind, body_path if kind == "smpl" else None)
    params = body.params_from_output(arrays, name)
    verts = jax.jit(body.vertices)(jax.tree.map(jax.numpy.asarray, params))
    return np.asarray(verts[:, ::stride], np.float32)


def render_clip(kp3d, out, clip=None, fps=30.0, sheet_frames=8, vertices=None, confidence=None):
    """Write `out` (.gif, .mp4 or .png contact sheet of `sheet_frames` frames) for a clip;
    vertices: optional (T, N, 3) body surface points (`body_vertices`); confidence: optional (T,)
    per-frame confidence of the lift (docs/keypoint-archive.md, "Quality"), shown in the title."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".png":
        frames = np.unique(np.linspace(0, len(kp3d) - 1, sheet_frames).round().astype(int))
        write_contact_sheet(render_frames(kp3d, clip, frames, vertices, confidence), out)
    elif suffix == ".gif":
        write_gif(render_frames(kp3d, clip, vertices=vertices, confidence=confidence), out, fps)
    elif suffix == ".mp4":
        write_mp4(render_frames(kp3d, clip, vertices=vertices, confidence=confidence), out, fps)
    else:
        raise SystemExit(f"{out}: unknown output type '{suffix}', use .mp4, .gif or .png")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m anylift_jax.viz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", required=True, help="lifting output <clip>.npz (keypoints3d)")
    parser.add_argument("--input", help="the archive clip that was lifted (2D keypoints, cameras)")
    parser.add_argument("--out", required=True, help="FILE.mp4, FILE.gif or FILE.png")
    parser.add_argument("--frames", type=int, default=8, help="frames of a .png contact sheet")
    parser.add_argument("--fps", type=float, help="frame rate (default: the input's, else 30)")
    parser.add_argument("--body-path", help="SMPL model file, to draw the body of an smpl output")
    args = parser.parse_args(argv)
    try:
        kp3d, _ = load_keypoints3d(args.clip)
        arrays = load_npz(args.clip)[0]
        vertices = body_vertices(arrays, args.clip, args.body_path)
        confidence = arrays.get("confidence")
        clip = read_clip(args.input) if args.input else None
    except (ArchiveError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if clip is not None and clip.num_frames != len(kp3d):
        print(f"error: {args.clip} has {len(kp3d)} frames, {args.input} {clip.num_frames}",
              file=sys.stderr)
        return 2
    fps = args.fps or (clip.fps if clip is not None else 30.0)
    render_clip(kp3d, args.out, clip, fps, args.frames, vertices, confidence)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
