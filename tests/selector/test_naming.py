from __future__ import annotations

import pytest

from datapool.errors import InvalidArgument
from services.selector.naming import frame_name


@pytest.mark.parametrize(
    ("path", "index", "count", "kind", "expected"),
    [
        ("campus4-c0.avi", 42, 100, "video", "campus4-c0-042-avi.png"),
        ("sub/dir/x.mp4", 7, 10, "video", "sub/dir/x-07-mp4.png"),
        ("sub/dir/x.mp4", 7, 99, "video", "sub/dir/x-07-mp4.png"),
        ("a.mov", 0, 1, "video", "a-0-mov.png"),
        ("a.mov", 999, 1000, "", "a-0999-mov.png"),
        ("photos/cat.jpg", 0, 1, "image", "photos/cat-jpg.png"),
        ("dir.v2/clip", 3, 5, "video", "dir.v2/clip-3.png"),
        ("archive.tar.gz", 1, 2, "video", "archive.tar-1-gz.png"),
    ],
)
def test_frame_name(path: str, index: int, count: int, kind: str, expected: str) -> None:
    assert frame_name(path, index, count, kind) == expected


def test_same_stem_different_extension_do_not_collide() -> None:
    assert frame_name("a.mp4", 1, 10) != frame_name("a.avi", 1, 10)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="kind"):
        frame_name("a.mp4", 0, 1, "audio")
