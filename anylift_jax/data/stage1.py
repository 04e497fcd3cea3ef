"""The `stage1_hybrid` data source of the Stage-1 prior (Sec. 2.1, Eq. 2-4): windows of a
keypoint archive of the target motion (the global source) mixed with X^proj, local projections of
3D mocap (`projection.MocapProjectionSource`)."""
import grain
import jax
import numpy as np

from anylift_jax import views
from anylift_jax.data import normalize as nz
from anylift_jax.data import pipeline, projection
from anylift_jax.io import archive
from anylift_jax.lifting.windows import make_windows


def read_inputs(folder):
    clips, errors = archive.read_archive(folder)
    if errors:
        raise archive.ArchiveError(f"{errors[0][0]}: {errors[0][1]}")
    if not clips:
        raise archive.ArchiveError(f"{folder}: no *.npz clips")
    return clips


class ArchiveWindows:
    """The global source of the Stage-1 prior: T-frame windows (stride 1) of archive clips.

    Item i (deterministic in (seed, i)) is window i mod n in model space, decomposed, with the
    camera condition C (d₀ from the person-height prior, as at synthesis time), a random line
    partner (a camera of the V-view ring around the estimated frame-0 pelvis with probability
    `ring_partner_prob`, else an epipole uniform in ±epipole_range), a random occlusion, and
    is_proj = 0 (Eq. 2 + Eq. 3). Keys and shapes as `projection.MocapProjectionSource`.
    """

    def __init__(self, folder, num_frames, seed, *, ring_views, ring_partner_prob, epipole_range,
                 occlusion_prob, score_threshold, epoch_size):
        clips = read_inputs(folder)
        wins = [w for i, c in enumerate(clips)
                for w in make_windows(i, c, num_frames, num_frames - 1, score_threshold)]
        self.x = np.stack([w.x for w in wins])
        self.valid = np.stack([w.valid for w in wins]) > 0
        self.mask = np.stack([w.mask for w in wins])
        self.w2c = np.stack([w.w2c for w in wins])
        self.scale = np.stack([w.scale for w in wins])
        self.center = np.stack([w.center for w in wins])
        pelvis, d0 = jax.vmap(views.estimate_pelvis0)(self.w2c[:, 0], self.scale, self.center)
        self.pelvis0, d0 = np.asarray(pelvis, np.float32), np.asarray(d0, np.float32)
        self.cam = nz.camera_condition(self.w2c, d0).astype(np.float32)
        self.seed, self.ring_views, self.epoch_size = seed, ring_views, max(epoch_size, len(wins))
        self.ring_partner_prob, self.epipole_range = ring_partner_prob, epipole_range
        self.occlusion_prob = occlusion_prob

    def __len__(self):
        return self.epoch_size

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        i = index % len(self.x)
        mask, w2c = self.mask[i], self.w2c[i]
        jm = pipeline.joint_mask(self.valid[i], mask, rng, self.occlusion_prob)
        x = nz.compose(self.x[i])
        if rng.random() < self.ring_partner_prob:
            partner = pipeline.ring_partner_center(w2c[0], self.pelvis0[i], self.ring_views, rng)
            params = nz.NormParams(self.scale[i], self.center[i])
            e = nz.epipole(w2c, np.broadcast_to(partner, (len(w2c), 3)), params)
        else:
            e = np.append(rng.uniform(-self.epipole_range, self.epipole_range, 2), 1.0)
        lines = nz.condition_lines(x, e.astype(np.float32))
        return {
            "x0": np.where(jm[..., None], self.x[i], 0.0).astype(np.float32),
            "cam": (self.cam[i] * mask[:, None]).astype(np.float32),
            "lines": np.where(jm[..., None], lines, 0.0).astype(np.float32),
            "mask": mask.astype(np.float32),
            "joint_mask": jm.astype(np.float32),
            "is_proj": np.float32(0.0),
        }


def prior_iterator(config, *, process_index, process_count, seed):
    """The `stage1_hybrid` data source: archive windows mixed with X^proj of `config.data.clips`
    (`projection.MocapProjectionSource`, every item a local projection) at `config.data.proj_fraction`."""
    d = config.data
    glob = ArchiveWindows(d.archive, d.num_frames, seed, ring_views=d.views,
                          ring_partner_prob=d.ring_partner_prob, epipole_range=d.epipole_range,
                          occlusion_prob=d.occlusion_prob, score_threshold=d.score_threshold,
                          epoch_size=d.epoch_size)
    proj = projection.MocapProjectionSource(d.clips, d.num_frames, 1.0, d.epoch_size, seed + 1)
    sources = [pipeline.EpochShuffle(pipeline.host_shard(s, process_index, process_count), seed + i)
               for i, s in enumerate((glob, proj))]
    ds = grain.MapDataset.mix(sources, [1.0 - d.proj_fraction, d.proj_fraction])
    ds = ds.batch(d.batch_size // process_count, drop_remainder=True)
    return iter(ds.to_iter_dataset())
