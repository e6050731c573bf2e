"""The frame naming rule: one name per (file, frame), stable across runs, ending in the suffix
of the format the run writes its frames in (`.png`, or `.jpg` with output_image_format jpg)."""

from __future__ import annotations

import hashlib
import posixpath

from datapool.errors import InvalidArgument

FILE_KINDS = ("video", "image")
# worker_config.output_image_format's values; a frame's name ends in `.<format>`.
FRAME_FORMATS = ("png", "jpg")

# A local folder allows 255 bytes per name, and a store writes each object through a
# temporary file beside it (`<name>.datapool-tmp-<32 hex>`, 46 bytes more): a frame
# name's components stay within 255 - 46 = 209 bytes; 200 leaves a margin.
MAX_COMPONENT_BYTES = 200
# Object-store keys are at most 1024 bytes (S3, GCS; Azure: characters), and frames live
# under `frames/<32-hex run id>/` (40 bytes): whole names stay within 960 bytes.
MAX_NAME_BYTES = 960
_HASH_CHARS = 16
# Past this the index and extension are dropped from a shortened name: the hash keeps it unique.
_MAX_TAIL_BYTES = 48


def frame_suffix(image_format: str) -> str:
    """`.png` or `.jpg`, the suffix of frames written in `image_format` ("" is png)."""
    image_format = image_format or "png"
    if image_format not in FRAME_FORMATS:
        raise InvalidArgument(f"image_format {image_format[:40]!r} is not one of {', '.join(FRAME_FORMATS)}")
    return f".{image_format}"


def frame_name(
    path: str, frame_index: int, frame_count: int, kind: str = "video", suffix: str = ".png"
) -> str:
    """`<path without extension>-<index padded to len(str(frame_count))>-<extension><suffix>`.

    Images have one frame, so their index is left out: `<path without extension>-<extension><suffix>`.
    Keeping the extension in the name keeps `a.mp4` and `a.avi` from colliding. `suffix` is the
    frame file's (`frame_suffix`), so the name in the manifest is the name of the file written.
    A name too long for a store is shortened (see `fit`).
    """
    stem, dot_ext = posixpath.splitext(path)
    ext = dot_ext[1:]
    parts = [""]
    if kind in ("video", ""):
        parts.append(str(frame_index).zfill(len(str(frame_count))))
    elif kind != "image":
        raise InvalidArgument(f"file_complete.kind {kind!r} of {path!r} is not one of {FILE_KINDS}")
    if ext:
        parts.append(ext)
    return fit(stem, "-".join(parts) + suffix)


def fit(stem: str, tail: str) -> str:
    """`stem + tail`, or, when that is too long for a local folder or an object-store key, a
    shortened name that stays deterministic and unique: each component is cut to a prefix, and
    the last one carries a hash of the full name (`<prefix>~<16 hex><tail>`)."""
    full = stem + tail
    if _fits(full):
        return full
    digest = hashlib.sha256(full.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    if len(tail.encode("utf-8", "surrogatepass")) > _MAX_TAIL_BYTES:
        tail = posixpath.splitext(tail)[1]
    *folders, base = stem.split("/")
    room = MAX_COMPONENT_BYTES - len(tail.encode("utf-8", "surrogatepass")) - _HASH_CHARS - 1
    last = f"{_prefix(base, room)}~{digest}{tail}"
    name = "/".join([*(_prefix(f, MAX_COMPONENT_BYTES) for f in folders), last])
    # Folders nested too deep for a key: the hash alone keeps the name unique.
    return name if _fits(name) else last


def _fits(name: str) -> bool:
    encoded = name.encode("utf-8", "surrogatepass")
    return len(encoded) <= MAX_NAME_BYTES and all(len(p) <= MAX_COMPONENT_BYTES for p in encoded.split(b"/"))


def _prefix(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` within `max_bytes` UTF-8 bytes, never a split character."""
    return text.encode("utf-8", "surrogatepass")[: max(0, max_bytes)].decode("utf-8", "ignore")
