"""The body model fitted to the lifted keypoints, all clips of a lifting group in one call."""
import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax.geometry.cameras import project
from anylift_jax.lifting.depth import detections


def fit_bodies(body, kp3d_list, clips, score_threshold, bucket, fit_config):
    """Fit the body model to each clip's world keypoints (T, 17, 3) (`on_input_rays` run first),
    their projection into the input view counted again where a joint is detected (`fit.fit3d`
    with `view`): the image position of a joint is observed, its depth along the ray is what the
    generated views guessed, so the fit should give way in depth first. Returns
    [(keypoints (T, 17, 3), params)].

    The clips are fitted together, one batched call: padded (weight 0) to the longest clip's
    length rounded up to a multiple of `bucket` frames, so that few shapes compile. fit_config:
    the lifting config's `fit` section (`body.fit.FitConfig` fields).
    """
    from anylift_jax.body import fit  # noqa: PLC0415  (keeps `--help` fast)

    Tp = -(-max(len(k) for k in kp3d_list) // bucket) * bucket

    def pad(x, fill):
        tail = np.repeat(x[-1:], Tp - len(x), 0) if fill is None else np.full((Tp - len(x),) + x.shape[1:], fill)
        return np.concatenate([x, tail.astype(x.dtype)])

    parts = {k: [] for k in ("kp", "w", "pix", "pix_w", "K", "w2c")}
    for kp, clip in zip(kp3d_list, clips):
        T = kp.shape[0]
        _, scores = detections(clip, score_threshold)
        w2c = np.linalg.inv(clip.cam_c2w.astype(np.float64)).astype(np.float32)
        K = np.broadcast_to(clip.intrinsics, (T, 3, 3)).astype(np.float32)
        pix = np.asarray(project(jnp.asarray(kp), jnp.asarray(K), jnp.asarray(w2c))[0])
        for key, x, fill in (("kp", kp, None), ("w", np.ones(kp.shape[:2], np.float32), 0.0), ("pix", pix, None),
                             ("pix_w", scores.astype(np.float32), 0.0), ("K", K, None), ("w2c", w2c, None)):
            parts[key].append(pad(x, fill))
    a = {k: jnp.asarray(np.stack(v)) for k, v in parts.items()}
    res = fit.fit3d(body, a["kp"], a["w"], fit.FitConfig(**fit_config),
                    view=(a["pix"], a["pix_w"], a["K"], a["w2c"]))
    params = jax.tree.map(np.asarray, res["params"])
    keypoints = np.asarray(res["keypoints"])
    out = []
    for i, kp in enumerate(kp3d_list):
        T = kp.shape[0]
        out.append((keypoints[i, :T], {k: (v[i] if k == "shape" else v[i, :T]) for k, v in params.items()}))
    return out
