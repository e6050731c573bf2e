"""The frame naming rule: one PNG name per (file, frame), stable across runs."""

from __future__ import annotations

import posixpath

from datapool.errors import InvalidArgument

FILE_KINDS = ("video", "image")


def frame_name(path: str, frame_index: int, frame_count: int, kind: str = "video") -> str:
    """`<path without extension>-<index padded to len(str(frame_count))>-<extension>.png`.

    Images have one frame, so their index is left out: `<path without extension>-<extension>.png`.
    Keeping the extension in the name keeps `a.mp4` and `a.avi` from colliding.
    """
    stem, dot_ext = posixpath.splitext(path)
    ext = dot_ext[1:]
    parts = [stem]
    if kind in ("video", ""):
        parts.append(str(frame_index).zfill(len(str(frame_count))))
    elif kind != "image":
        raise InvalidArgument(f"file_complete.kind {kind!r} of {path!r} is not one of {FILE_KINDS}")
    if ext:
        parts.append(ext)
    return "-".join(parts) + ".png"
