"""The `mocap_projection` data source: real 2D motion for training and tests, the shipped mocap
clips through random moving cameras, generated per item (no store)."""
import grain
import numpy as np

from anylift_jax import skeleton
from anylift_jax.data import cameras, mocap, normalize


class MocapProjectionSource:
    """Real 2D motion for training and tests: shipped mocap clips through random moving cameras.

    Item i (deterministic in (seed, i)): a window of `num_frames` frames of a clip, a camera
    3–5 m away at a random azimuth looking at the frame-0 pelvis and drifting at up to 0.5 m/s,
    projected to rays, normalised to model space (frame-0 mid-hip at 0, frame-0 box 1 unit) and
    decomposed; epipolar lines towards a random epipole in [-3, 3]² (MVLift's training epipoles).
    With probability `proj_fraction` the item is an X^proj sample: the pelvis' horizontal motion
    is removed in 3D and the camera is static.
    """

    def __init__(self, clips, num_frames, proj_fraction, epoch_size, seed):
        self.clips = [mocap.load_shipped(name) for name in clips]
        self.num_frames, self.proj_fraction, self.epoch_size, self.seed = num_frames, proj_fraction, epoch_size, seed

    def __len__(self):
        return self.epoch_size

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        clip = self.clips[rng.integers(len(self.clips))]
        start = rng.integers(max(len(clip) - self.num_frames, 0) + 1)
        pts = clip[start:start + self.num_frames].astype(np.float64)
        t = len(pts)
        is_proj = rng.random() < self.proj_fraction
        if is_proj:
            pts = normalize.recenter(pts)
        root = skeleton.mid_hip(pts)
        azimuth, dist = rng.uniform(0, 2 * np.pi), rng.uniform(3.0, 5.0)
        eye = root[0] + np.array([dist * np.cos(azimuth), dist * np.sin(azimuth), rng.uniform(-0.3, 0.6)])
        velocity = 0.0 if is_proj else rng.uniform(-0.5, 0.5, 3) * np.array([1.0, 1.0, 0.2]) / 30.0
        rot = cameras.look_at(eye, root[0])[:3, :3]
        w2c = np.tile(np.eye(4), (t, 1, 1))
        w2c[:, :3, :3] = rot
        w2c[:, :3, 3] = -(eye + np.arange(t)[:, None] * velocity) @ rot.T
        cam_pts = np.einsum("tij,tkj->tki", w2c[:, :3, :3], pts) + w2c[:, None, :3, 3]
        rays = cam_pts[..., :2] / cam_pts[..., 2:]
        center = skeleton.mid_hip(rays[0])
        x = (rays - center) / (rays[0].max(0) - rays[0].min(0)).max()
        lines = normalize.condition_lines(x, np.append(rng.uniform(-3.0, 3.0, 2), 1.0))
        cam = normalize.camera_condition(w2c, np.linalg.norm(skeleton.mid_hip(cam_pts[0])))
        pad = self.num_frames - t

        def padded(a):
            return np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).astype(np.float32)

        return {
            "x0": padded(normalize.decompose(x)), "cam": padded(cam),
            "lines": padded(lines), "mask": padded(np.ones(t)), "joint_mask": padded(np.ones((t, x.shape[1]))),
            "is_proj": np.float32(is_proj),
        }


def iterator(config, *, process_index, process_count, seed):
    d = config.data
    source = MocapProjectionSource(d.clips, d.num_frames, d.proj_fraction, d.epoch_size, seed)
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat()
    ds = ds[process_index::process_count].batch(d.batch_size // process_count, drop_remainder=True)
    return iter(ds.to_iter_dataset())
