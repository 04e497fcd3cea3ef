"""Adapters from 2D-pose and camera-tracking outputs to one keypoint-archive clip, and their CLI.

    python -m anylift_jax.io.pack --keypoints FILE --cameras FILE --out ARCHIVE_DIR \
        [--clip-id ID] [--fps 30] [--image-size W H]

Keypoints (`--keypoints`):
- `.json`: MMPose / RTMPose predictions, either the list `[{"frame_id", "instances"}, ...]` that
  `MMPoseInferencer(pred_out_dir=...)` writes for a video, or the
  `{"meta_info", "instance_info": [...]}` dict of MMPose's `topdown_demo_with_mmdet.py`. Each
  instance has `keypoints` (17, 2), `keypoint_scores` (17,) and optionally `bbox` (MMPose writes
  `[[x1, y1, x2, y2]]`). Frames are taken in file order; `frame_id`s, when given, must be
  consecutive. Image size comes from `meta_info.image_size` = [width, height] when present.
- `.npz`: ViTPose-style `keypoints` (T, 17, 3) = [x, y, score].

Person track (a JSON frame lists every detected person): the first frame with any detection
picks the instance with the highest mean keypoint score; every later frame picks the instance
whose centre (bbox centre, or the mean of its scored keypoints when there is no bbox) is nearest
to the centre of the previous pick. Frames without detections are kept as missing (score 0),
and the track goes on from the last pick.

Scores are clipped to [0, 1]: RTMPose's SimCC scores can exceed 1 (open-mmlab/mmpose#2755).

Cameras (`--cameras`): MegaSaM output `.npz` with `cam_c2w` (T, 4, 4) and `intrinsic` (3, 3)
(other members such as `images`, `depths` are never loaded). MegaSaM tracks frames resized by one
factor and cropped to multiples of 8, with `intrinsic` in those pixels; when the header of
`images` (T, H, W, 3) shows a size other than the keypoints' image size, K is rescaled to the
keypoints' pixels by the less-cropped axis' ratio (error below 8 px over the side length).

Bad input exits with status 2 and a one-line message naming the file and the key; nothing is
written then.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from anylift_jax import skeleton
from anylift_jax.io.archive import (
    ArchiveError,
    key_error,
    check_array,
    check_cam_c2w,
    check_finite,
    check_intrinsics,
    check_points,
    clip_from_arrays,
    load_npz,
    read_clip,
    write_clip,
)

J = skeleton.NUM_JOINTS  # COCO-17
ASPECT_TOL = 0.05  # relative difference of the width and height ratios of camera vs keypoint frames


def _numbers(name, key, value):
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise key_error(name, key, "expected a (nested) list of numbers")


def _instance(name, key, inst):
    """(keypoints (17, 2), scores (17,), centre (2,)) of one MMPose instance."""
    if not isinstance(inst, dict):
        raise key_error(name, key, "expected an object with 'keypoints' and 'keypoint_scores'")
    for k in ("keypoints", "keypoint_scores"):
        if k not in inst:
            raise key_error(name, f"{key}.{k}", "missing")
    dims = {}
    kp = check_array(name, f"{key}.keypoints", _numbers(name, f"{key}.keypoints",
                                                        inst["keypoints"]), (J, 2), dims)
    sc = check_array(name, f"{key}.keypoint_scores", _numbers(name, f"{key}.keypoint_scores",
                                                              inst["keypoint_scores"]), (J,), dims)
    check_finite(name, f"{key}.keypoint_scores", sc)
    sc = np.clip(sc, 0.0, 1.0)
    kp = check_points(name, f"{key}.keypoints", kp, sc, "keypoint_scores")
    if "bbox" in inst:
        box = _numbers(name, f"{key}.bbox", inst["bbox"]).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise key_error(name, f"{key}.bbox",
                            f"expected 4 finite numbers [x1, y1, x2, y2], got {box}")
        centre = (box[:2] + box[2:]) / 2
    else:
        w = sc if sc.sum() > 0 else np.ones_like(sc)
        centre = (kp * w[:, None]).sum(0) / w.sum()
    return kp, sc, centre


def _nearest(instances, centre):
    return min(instances, key=lambda inst: np.sum((inst[2] - centre) ** 2))


def read_mmpose(path):
    """MMPose / RTMPose prediction JSON -> (keypoints (T, 17, 2) float32, scores (T, 17) float32,
    image_size (2,) or None); one person's track, see the module docstring."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ArchiveError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArchiveError(f"{name}: not a readable JSON file ({e})") from None
    meta = None
    if isinstance(data, dict):
        if "instance_info" not in data:
            raise key_error(name, "instance_info",
                            "missing: expected MMPose predictions, a list of "
                            "{frame_id, instances} or a dict with 'instance_info'")
        frames, prefix, meta = data["instance_info"], "instance_info", data.get("meta_info")
    else:
        frames, prefix = data, ""
    if not isinstance(frames, list) or not frames:
        raise key_error(name, prefix or "(top-level list)",
                        "expected a non-empty list of per-frame entries")

    per_frame, last_id = [], None
    for t, frame in enumerate(frames):
        key = f"{prefix}[{t}]"
        if not isinstance(frame, dict) or not isinstance(frame.get("instances"), list):
            raise key_error(name, f"{key}.instances",
                            "expected each frame to be an object with an 'instances' list")
        if "frame_id" in frame:
            fid = frame["frame_id"]
            if not isinstance(fid, int) or (last_id is not None and fid != last_id + 1):
                raise key_error(name, f"{key}.frame_id", "frame ids must be consecutive "
                                f"integers, got {fid!r} after {last_id!r}")
            last_id = fid
        per_frame.append([_instance(name, f"{key}.instances[{i}]", inst)
                          for i, inst in enumerate(frame["instances"])])

    T = len(per_frame)
    keypoints = np.zeros((T, J, 2), np.float32)
    scores = np.zeros((T, J), np.float32)
    first = next((t for t, insts in enumerate(per_frame) if insts), None)
    if first is None:
        raise key_error(name, f"{prefix}[*].instances", "no person detected in any frame")
    keypoints[first], scores[first], centre = max(per_frame[first], key=lambda i: i[1].mean())
    for t in range(first + 1, T):
        if per_frame[t]:
            keypoints[t], scores[t], centre = _nearest(per_frame[t], centre)

    image_size = None
    if isinstance(meta, dict) and "image_size" in meta:
        image_size = _numbers(name, "meta_info.image_size", meta["image_size"])
        if image_size.shape != (2,) or not (image_size > 0).all() or (image_size % 1).any():
            raise key_error(name, "meta_info.image_size", "expected [width, height] as two "
                            f"positive integers, got {meta['image_size']}")
        image_size = image_size.astype(np.int64)
    return keypoints, scores, image_size


def read_vitpose(path):
    """ViTPose-style npz, `keypoints` (T, 17, 3) = [x, y, score] -> (keypoints (T, 17, 2),
    scores (T, 17)) float32."""
    name = os.fspath(path)
    arrays, _ = load_npz(path, ("keypoints",))
    if "keypoints" not in arrays:
        raise key_error(name, "keypoints", "missing (expected (T, 17, 3) = [x, y, score])")
    dims = {}
    kps = check_array(name, "keypoints", arrays["keypoints"], ("T", J, 3), dims)
    if dims["T"] < 1:
        raise key_error(name, "keypoints", "expected at least one frame, got T=0")
    bad = ~np.isfinite(kps[..., 2])
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise key_error(name, "keypoints", f"non-finite score (channel 2) at frame {t}, joint {j}")
    scores = np.clip(kps[..., 2], 0.0, 1.0)
    keypoints = check_points(name, "keypoints", kps[..., :2], scores, "keypoints[..., 2]")
    return keypoints, scores.astype(np.float32)


def read_megasam(path):
    """MegaSaM output npz -> (cam_c2w (T, 4, 4), intrinsics (T, 3, 3)) float32 and the size
    (width, height) of the frames the cameras were tracked on (None without `images`)."""
    name = os.fspath(path)
    arrays, headers = load_npz(path, ("cam_c2w", "intrinsic"))
    for key in ("cam_c2w", "intrinsic"):
        if key not in arrays:
            raise key_error(name, key, "missing (MegaSaM output has cam_c2w (T, 4, 4) and "
                            "intrinsic (3, 3))")
    dims = {}
    cam_c2w = check_cam_c2w(name, "cam_c2w", arrays["cam_c2w"], dims)
    if dims["T"] < 1:
        raise key_error(name, "cam_c2w", "expected at least one frame, got T=0")
    intrinsics = check_intrinsics(name, "intrinsic", arrays["intrinsic"], dims)
    size = None
    if "images" in headers:
        shape = headers["images"][0]
        if len(shape) not in (3, 4) or min(shape[1:3]) < 1:
            raise key_error(name, "images", f"expected frames (T, H, W[, 3]), got shape {shape}")
        size = np.array([shape[2], shape[1]], np.int64)
    return cam_c2w, intrinsics, size


def rescale_intrinsics(intrinsics, cam_size, image_size, name):
    """K (T, 3, 3) in pixels of frames `cam_size` (W, H) -> pixels of frames `image_size`."""
    ratio = np.asarray(cam_size, np.float64) / np.asarray(image_size, np.float64)
    if abs(ratio[0] - ratio[1]) > ASPECT_TOL * ratio.max():
        raise key_error(name, "images", f"camera frames {cam_size[0]}x{cam_size[1]} are not a "
                        f"resize of the keypoint frames {image_size[0]}x{image_size[1]} "
                        "(aspect ratios differ)")
    out = intrinsics.astype(np.float64)
    out[:, :2] /= ratio.max()
    return out.astype(np.float32)


def pack_clip(keypoints_path, cameras_path, clip_id=None, fps=30.0, image_size=None):
    """Build a validated `Clip` from a keypoints file and a cameras file (see module docstring).

    clip_id: default the keypoints file stem. image_size: (W, H) of the keypoint frames, default
    from the MMPose JSON metadata. Raises ArchiveError naming the file and key at fault.
    """
    kp_name, cam_name = os.fspath(keypoints_path), os.fspath(cameras_path)
    suffix = Path(keypoints_path).suffix.lower()
    meta_size = None
    if suffix == ".json":
        keypoints, scores, meta_size = read_mmpose(keypoints_path)
    elif suffix == ".npz":
        keypoints, scores = read_vitpose(keypoints_path)
    else:
        raise ArchiveError(f"{kp_name}: unknown keypoints format '{suffix}' (expected MMPose .json "
                           "or ViTPose-style .npz)")
    cam_c2w, intrinsics, cam_size = read_megasam(cameras_path)
    if keypoints.shape[0] != cam_c2w.shape[0]:
        raise ArchiveError(f"{kp_name}: key 'keypoints': T={keypoints.shape[0]} frames, but "
                           f"{cam_name}: key 'cam_c2w' has T={cam_c2w.shape[0]}")
    if image_size is None:
        image_size = meta_size
    if image_size is None:
        raise ArchiveError(f"{kp_name}: image size unknown (no 'meta_info.image_size' in an "
                           "MMPose JSON): pass --image-size W H")
    image_size = np.asarray(image_size, np.int64)
    if cam_size is not None and (image_size > 0).all() and (cam_size != image_size).any():
        intrinsics = rescale_intrinsics(intrinsics, cam_size, image_size, cam_name)
    clip_id = Path(keypoints_path).stem if clip_id is None else clip_id
    arrays = dict(keypoints=keypoints, scores=scores, intrinsics=intrinsics, cam_c2w=cam_c2w,
                  image_size=image_size, fps=np.asarray(fps))
    return clip_from_arrays(clip_id, arrays)


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m anylift_jax.io.pack",
        description="Pack 2D keypoints (MMPose/RTMPose JSON or ViTPose-style npz) and MegaSaM "
                    "cameras into one clip <clip_id>.npz of a keypoint archive v1 "
                    "(docs/keypoint-archive.md).")
    p.add_argument("--keypoints", required=True, metavar="FILE",
                   help="MMPose/RTMPose prediction .json, or .npz with keypoints (T, 17, 3)")
    p.add_argument("--cameras", required=True, metavar="FILE",
                   help="MegaSaM output .npz with cam_c2w (T, 4, 4) and intrinsic (3, 3)")
    p.add_argument("--out", required=True, metavar="ARCHIVE_DIR",
                   help="archive folder (created if missing)")
    p.add_argument("--clip-id", help="clip id, the output file stem (default: keypoints stem)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate (default: 30)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                   help="width and height of the keypoint frames in pixels (default: from the "
                        "MMPose JSON meta_info.image_size; required otherwise)")
    return p


def main(argv=None):
    """CLI entry point; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        clip = pack_clip(args.keypoints, args.cameras, args.clip_id, args.fps, args.image_size)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{clip.clip_id}.npz"
        write_clip(path, clip)
        try:
            read_clip(path)
        except ArchiveError:
            path.unlink()
            raise
    except (ArchiveError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} (T={clip.num_frames})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
