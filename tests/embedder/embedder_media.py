"""Generated media for the embedder tests (a module with a unique name, so that
other test folders' conftest modules never shadow it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datapool.samples import (
    CORRUPT_KINDS,
    CorruptKind,
    make_corrupt_file,
    make_image,
    make_sample_bucket,
    make_video,
)
from datapool.storage import LocalStore
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2

N_FRAMES = 12  # small: the model runs at a few dozen frames/s on 2 CPU cores
SIZE = (96, 64)


@dataclass(frozen=True)
class Media:
    root: Path
    videos: list[Path]  # campus*.mp4, distinct scenes, N_FRAMES each
    avi: Path
    mkv: Path
    png: Path
    jpg: Path
    corrupt: dict[CorruptKind, Path]  # kind -> file with a .mp4 extension
    truncated_mkv: Path

    def location(self) -> common_pb2.StoreLocation:
        return local_location(str(self.root))

    def ref(self, path: Path) -> common_pb2.FileRef:
        key = path.relative_to(self.root).as_posix()
        info = LocalStore(self.root).stat(key)
        assert info is not None
        return common_pb2.FileRef(path=key, size=info.size, etag=info.etag)


def build_media(root: Path) -> Media:
    videos = make_sample_bucket(root, 3, n_frames=N_FRAMES, size=SIZE)
    corrupt = {kind: make_corrupt_file(root / "bad" / f"{kind}.mp4", kind) for kind in CORRUPT_KINDS}
    truncated_mkv = make_video(root / "bad" / "long.mkv", scene_seed=7, n_frames=60, size=SIZE)
    data = truncated_mkv.read_bytes()
    truncated_mkv.write_bytes(data[: len(data) // 2])
    return Media(
        root=root,
        videos=videos,
        avi=make_video(root / "other" / "clip.avi", scene_seed=11, n_frames=N_FRAMES, size=SIZE),
        mkv=make_video(root / "other" / "clip.mkv", scene_seed=12, n_frames=N_FRAMES, size=SIZE),
        png=make_image(root / "stills" / "one.png", scene_seed=13, size=SIZE),
        jpg=make_image(root / "stills" / "two.jpg", scene_seed=14, size=SIZE),
        corrupt=corrupt,
        truncated_mkv=truncated_mkv,
    )
