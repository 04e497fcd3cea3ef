"""AMASS-style SMPL motion (`poses`, `trans`, `betas`, `mocap_framerate`) -> COCO-17 keypoints.

    python -m anylift_jax.data.amass IN.npz --smpl SMPL_FILE --out OUT.npz

For users who have an SMPL model file (none is shipped): the parameters go through the SMPL
body-model adapter (`body.model.get_body_model("smpl", path)`), whose COCO-17 keypoints are SMPL's
limb joints plus face vertices. The output file is a keypoints3d clip (`keypoints3d` (T, 17, 3)
float32, `fps` 30.0), the format of the shipped clips that `data.mocap.load_npz` reads.

Input keys (read with allow_pickle=False; other keys such as `gender` or `dmpls` are never read,
so whatever they hold is ignored without unpickling):
- `poses` (T, 72) SMPL (global orient ‖ 23 body joints) or (T, 156) SMPL+H (global orient ‖ 21
  body joints ‖ 2 × 15 finger joints): SMPL+H's fingers are dropped and SMPL's two hand joints
  (22, 23) set to zero rotation. Axis-angle, radians.
- `trans` (T, 3) metres; `betas` (S,): truncated or zero-padded to the SMPL file's shape count.
  AMASS fits SMPL+H, whose shape space is not SMPL's: an SMPL file reproduces AMASS bodies
  approximately (same pose and trajectory, limb lengths off by up to a few cm).
- `mocap_framerate` a positive number, frames per second.

Output frame: the file's world frame unchanged. AMASS is Z up, metres, as our world (design.md),
so no axis change; its root orientation already turns SMPL's Y-up body upright. The floor is
left where the capture put it (AMASS: close to z = 0) and the clip is not re-centred, unlike the
shipped BVH conversion (`mocap.bvh_to_coco`), which shifts the soles' floor to z = 0.
Frame rate: keypoints are resampled to 30 fps from the first frame by linear interpolation between
the two neighbouring source frames (rotations are not interpolated; at 60 or 120 fps every kept
time is a source frame, so the keypoints are exact there). Keeps every output time inside the clip.
"""
import argparse
import sys
import zipfile
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np

from anylift_jax import skeleton
from anylift_jax.data import mocap
from anylift_jax.body.model import get_body_model
from anylift_jax.io.archive import check_array, check_finite, key_error

FPS = 30.0
KEYS = ("poses", "trans", "betas", "mocap_framerate")
# Axis-angle values per pose row: SMPL = 3 + 23 · 3, SMPL+H = 3 + 21 · 3 + 30 · 3.
SMPL_WIDTH, SMPLH_WIDTH = 72, 156
SMPLH_BODY = 3 + 21 * 3
CHUNK = 1024  # frames per jit call: bounds memory on long clips, one compilation per clip size


def read_amass(path):
    """The validated arrays of an AMASS-style npz: poses (T, 72 | 156), trans (T, 3), betas (S,)
    as float32, mocap_framerate as a float. One-line ValueError naming file and key otherwise."""
    name = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except ValueError:
        # Neither zip nor .npy: numpy takes it for a pickle, which is never loaded.
        raise ValueError(f"{name}: not an .npz archive (files that need pickle are refused)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{name}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{name}: a single .npy array, expected an .npz archive of named arrays")
    raw = {}
    with npz:
        for key in KEYS:
            if key not in npz.files:
                raise ValueError(f"{name}: missing key '{key}'")
            try:
                raw[key] = npz[key]
            except ValueError:
                raise key_error(name, key, "holds a pickled object array, refused: files are read "
                                "without pickle") from None
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise key_error(name, key, f"corrupt member ({type(e).__name__}: {e})") from None
    poses = raw["poses"]
    if poses.dtype.kind != "f" or poses.ndim != 2 or poses.shape[1] not in (SMPL_WIDTH, SMPLH_WIDTH):
        raise key_error(name, "poses", f"expected a float array (T, {SMPL_WIDTH}) or "
                        f"(T, {SMPLH_WIDTH}), got {poses.dtype} {poses.shape}")
    if poses.shape[0] == 0:
        raise key_error(name, "poses", "no frames")
    dims = {"T": poses.shape[0]}
    trans = check_array(name, "trans", raw["trans"], ("T", 3), dims)
    betas = check_array(name, "betas", raw["betas"], ("S",), dims)
    for key, value in (("poses", poses), ("trans", trans), ("betas", betas)):
        check_finite(name, key, value)
    rate = raw["mocap_framerate"]
    if rate.shape != () or rate.dtype.kind not in "iuf" or not np.isfinite(rate) or not rate > 0:
        raise key_error(name, "mocap_framerate", f"expected a positive number, got {rate!r}")
    return {"poses": poses.astype(np.float32), "trans": trans.astype(np.float32),
            "betas": betas.astype(np.float32), "mocap_framerate": float(rate)}


def smpl_params(arrays, shape_dim):
    """Body-model parameters (`body.model` pytree, T frames) of `read_amass` arrays for an SMPL
    adapter with `shape_dim` betas: orient (T, 3), pose (T, 23, 3), shape (S,), transl (T, 3)."""
    poses, T = arrays["poses"], len(arrays["poses"])
    if poses.shape[1] == SMPLH_WIDTH:
        poses = np.concatenate([poses[:, :SMPLH_BODY], np.zeros((T, 6), np.float32)], 1)
    betas = arrays["betas"][:shape_dim]
    return {"orient": poses[:, :3], "pose": poses[:, 3:].reshape(T, 23, 3),
            "shape": np.pad(betas, (0, shape_dim - len(betas))), "transl": arrays["trans"]}


# The adapter object is a static argument (hashed by identity): one compilation per body model.
_chunk_keypoints = jax.jit(lambda body, params: body.keypoints(params), static_argnums=0)


def keypoints(body, params, chunk=CHUNK):
    """COCO-17 keypoints (T, 17, 3) float32 of one sequence's parameters (numpy, T frames),
    evaluated `chunk` frames per jit call (the last chunk padded, so one compilation)."""
    T = len(params["orient"])
    out = []
    for start in range(0, T, chunk):
        part = {k: params[k][start:start + chunk] for k in ("orient", "pose", "transl")}
        n = len(part["orient"])
        part = {k: np.concatenate([v, np.repeat(v[-1:], chunk - n, 0)]) for k, v in part.items()}
        part["shape"] = params["shape"]
        out.append(np.asarray(_chunk_keypoints(body, jax.tree.map(jnp.asarray, part)))[:n])
    return np.concatenate(out)


def load_amass(path, body, chunk=CHUNK):
    """COCO-17 keypoints (T', 17, 3) float32 at 30 fps, metres, in the file's Z-up world frame, of
    an AMASS-style SMPL npz evaluated through the SMPL adapter `body` (module docstring)."""
    if getattr(body, "name", None) != "smpl":
        raise ValueError(f"{path}: AMASS poses need the SMPL body model (get_body_model('smpl', "
                         f"path)), got {getattr(body, 'name', body)!r}")
    arrays = read_amass(path)
    params = smpl_params(arrays, body.shape_dim)
    lo, w = mocap.resample_times(len(arrays["poses"]), arrays["mocap_framerate"] / FPS)
    hi = np.where(w > 0, np.minimum(lo + 1, len(arrays["poses"]) - 1), lo)
    # Only the source frames the output touches are evaluated (a quarter of them at 120 fps).
    need = np.unique(np.concatenate([lo, hi]))
    kp = keypoints(body, {k: v if k == "shape" else v[need] for k, v in params.items()}, chunk)
    w = w[:, None, None]
    out = (1.0 - w) * kp[np.searchsorted(need, lo)] + w * kp[np.searchsorted(need, hi)]
    chex.assert_shape(out, (len(lo), skeleton.NUM_JOINTS, 3))
    return out.astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m anylift_jax.data.amass", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="AMASS-style SMPL npz (poses, trans, betas, mocap_framerate)")
    parser.add_argument("--smpl", required=True, help="your SMPL model file (.npz or .pkl)")
    parser.add_argument("--out", required=True, help="keypoints3d clip npz to write")
    args = parser.parse_args(argv)
    try:
        kp = load_amass(args.input, get_body_model("smpl", args.smpl))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    np.savez(args.out, keypoints3d=kp, fps=np.float64(FPS),
             source=np.asarray(f"{Path(args.input).name} through the SMPL model {Path(args.smpl).name}"))
    print(f"wrote {args.out}: {len(kp)} frames at {FPS:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
