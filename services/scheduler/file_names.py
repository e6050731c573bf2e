"""Input file names a run cannot carry, and how reports show them.

A name the listing returns is skipped, with a reason, when it cannot travel or be read
back intact: protobuf strings must be valid UTF-8 (a local folder may hold any bytes),
and the pool's exports (`export_filenames_by_tag_name`) are one frame name per line.
We refuse line breaks rather than escape them, so every exported line is a real name.
"""

from __future__ import annotations

_LINE_BREAKS = ("\n", "\r")


def printable(key: str) -> str:
    """`key` as a person can read it: bytes that are not UTF-8 as `\\xff`, control characters escaped.

    Local listings decode names with Python's surrogateescape, so the original bytes are
    recovered before they are escaped.
    """
    raw = key.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


def name_problem(key: str) -> str | None:
    """Why the file `key` cannot be part of a run, or None when it can."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8; rename the file"
    if any(c in key for c in _LINE_BREAKS):
        return "the file name contains a line break, which would split the pool's exported file names"
    return None
