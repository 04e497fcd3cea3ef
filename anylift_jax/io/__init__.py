"""Keypoint archive v1 I/O (docs/keypoint-archive.md); adapters and CLI in `anylift_jax.io.pack`."""
from anylift_jax.io.archive import (
    ArchiveError,
    Clip,
    clip_from_arrays,
    read_archive,
    read_clip,
    validate_output,
    write_clip,
    write_output,
)

__all__ = [
    "ArchiveError", "Clip", "clip_from_arrays", "read_archive", "read_clip", "validate_output",
    "write_clip", "write_output",
]
