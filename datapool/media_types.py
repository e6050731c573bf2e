"""Which files a dataset takes, by extension (lower-cased, with the dot)."""

from __future__ import annotations

from pathlib import PurePosixPath

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def extension(path: str) -> str:
    return PurePosixPath(path).suffix.lower()


def is_video(path: str) -> bool:
    return extension(path) in VIDEO_EXTENSIONS


def is_image(path: str) -> bool:
    return extension(path) in IMAGE_EXTENSIONS
