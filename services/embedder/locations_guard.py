"""What an embedder may touch: frames only under a run's own frame folder, and, when
`--allowed-root` folders are configured, local datasources only inside them.

The scheduler is the only caller (the internal token sees to that); these checks keep a
bug or a stolen token from turning RenderFrames into "write this PNG anywhere" or
EmbedFile/RenderFrames into "decode any file on this machine".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datapool.errors import InvalidArgument, PermissionDenied
from datapool.pool.layout import FRAMES_PREFIX
from datapool.storage.nesting import resolved_root
from datapool.v1 import common_pb2

ALLOWED_ROOTS_ENV = "DATAPOOL_ALLOWED_ROOTS"


def check_frame_key(key: str, suffix: str = ".png") -> None:
    """A rendered frame's key must be `frames/<run id>/<frame name><suffix>` (suffix: the image
    format's, `.png` or `.jpg`), where the frame name keeps the video's folders
    (`sub/img0-jpg.png`) but no '.', '..' or empty segment."""
    parts = key.split("/")
    if (
        len(parts) < 3
        or not key.startswith(FRAMES_PREFIX)
        or any(p in ("", ".", "..") or "\0" in p for p in parts)
        or not key.endswith(suffix)
    ):
        raise InvalidArgument(
            f"target_keys: {key[:200]!r} is not a frame key: frames are written only as "
            f"'frames/<run id>/<frame name>{suffix}', without '.', '..' or empty path segments"
        )


@dataclass(frozen=True)
class AllowedRoots:
    """Folders local datasources must lie in; none configured means no restriction."""

    roots: tuple[Path, ...] = ()

    @classmethod
    def of(cls, folders: Iterable[str | os.PathLike[str]]) -> AllowedRoots:
        return cls(tuple(Path(os.path.realpath(f)) for f in folders))

    @classmethod
    def from_env(cls) -> AllowedRoots:
        value = os.environ.get(ALLOWED_ROOTS_ENV, "")
        return cls.of(p for p in value.split(os.pathsep) if p)

    def check_location(self, location: common_pb2.StoreLocation, field: str) -> None:
        if self.roots and location.WhichOneof("kind") == "local":
            self.check_path(resolved_root(location), f"{field}.local.root", location.local.root)

    def check_path(self, path: Path, field: str, given: str = "") -> None:
        """PERMISSION_DENIED naming `path` unless it lies in an allowed root (symlinks resolved)."""
        if not self.roots:
            return
        real = Path(os.path.realpath(path))
        if not any(real == r or real.is_relative_to(r) for r in self.roots):
            shown = f"{given} (resolves to {real})" if given and given != str(real) else str(real)
            raise PermissionDenied(
                f"{field}: {shown} is outside the folders this embedder may use "
                f"(--allowed-root {', '.join(map(str, self.roots))})"
            )
