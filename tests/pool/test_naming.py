from __future__ import annotations

import pytest

from datapool.errors import InvalidArgument
from datapool.pool.layout import frame_key
from datapool.pool.naming import MAX_COMPONENT_BYTES, MAX_NAME_BYTES, frame_name, frame_suffix


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


def _byte_lengths(name: str) -> list[int]:
    return [len(part.encode()) for part in name.split("/")]


def test_a_name_too_long_for_a_local_folder_is_shortened_deterministically_and_stays_unique() -> None:
    path = "é" * 123 + "x.mp4"  # 250 bytes: its frame names, plus a temporary suffix, pass 255
    names = [frame_name(path, i, 100) for i in range(100)]
    assert len(set(names)) == 100
    assert names == [frame_name(path, i, 100) for i in range(100)]
    assert all(max(_byte_lengths(n)) <= MAX_COMPONENT_BYTES for n in names)
    assert MAX_COMPONENT_BYTES + len(".datapool-tmp-") + 32 <= 255
    assert names[7].startswith("é" * 20) and names[7].endswith("-007-mp4.png")
    # Another long name with the same prefix does not collide.
    assert frame_name("é" * 123 + "y.mp4", 7, 100) != names[7]


def test_a_name_too_long_for_an_object_store_key_is_shortened() -> None:
    folders = "/".join(f"{i:02d}" + "d" * 150 for i in range(8))  # 1231 bytes of folders
    a, b = frame_name(folders + "/a.mp4", 1, 2), frame_name(folders + "/b.mp4", 1, 2)
    assert a != b
    for name in (a, b):
        assert len(f"frames/{'0' * 32}/{name}".encode()) <= 1024
        assert len(name.encode()) <= MAX_NAME_BYTES and max(_byte_lengths(name)) <= MAX_COMPONENT_BYTES


def test_names_that_fit_are_unchanged() -> None:
    path = "d" * 189 + ".mp4"
    assert frame_name(path, 3, 10) == "d" * 189 + "-03-mp4.png"


def test_a_jpg_frame_is_named_jpg_even_when_shortened() -> None:
    assert frame_name("sub/x.mp4", 7, 10, "video", frame_suffix("jpg")) == "sub/x-07-mp4.jpg"
    assert frame_name("photos/cat.png", 0, 1, "image", frame_suffix("jpg")) == "photos/cat-png.jpg"
    # Too long for a folder, with a tail past 48 bytes: the shortened name keeps only the suffix.
    path = "d" * 250 + "." + "e" * 60
    shortened = frame_name(path, 3, 10, "video", ".jpg")
    assert shortened.endswith(".jpg") and "~" in shortened
    assert max(_byte_lengths(shortened)) <= MAX_COMPONENT_BYTES


def test_the_frame_suffix_of_an_unknown_format_is_refused() -> None:
    assert frame_suffix("") == ".png"
    with pytest.raises(InvalidArgument, match="'gif' is not one of png, jpg"):
        frame_suffix("gif")


@pytest.mark.parametrize(
    ("name", "image_format", "key"),
    [
        ("sub/x-07-mp4.png", "png", "frames/r/sub/x-07-mp4.png"),
        ("sub/x-07-mp4.jpg", "jpg", "frames/r/sub/x-07-mp4.jpg"),
        # A selector older than SelectionSpec.image_format names frames `.png` in jpg runs.
        ("sub/x-07-mp4.png", "jpg", "frames/r/sub/x-07-mp4.jpg"),
    ],
)
def test_a_frame_key_ends_in_the_runs_format(name: str, image_format: str, key: str) -> None:
    assert frame_key("r", name, image_format) == key
