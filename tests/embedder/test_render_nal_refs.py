from __future__ import annotations

from pathlib import Path

import av
import pytest
from gop_media import make_gop_clip

from services.embedder.gop_plan import read_index
from services.embedder.nal_refs import is_unreferenced


def frame_types(path: Path) -> dict[int, str]:
    """Each frame's picture type (I, P, B) by pts, as the decoder reports it."""
    with av.open(str(path)) as container:
        return {
            int(f.pts or 0): av.video.frame.PictureType(f.pict_type).name for f in container.decode(video=0)
        }


@pytest.mark.parametrize("suffix", [".mp4", ".ts"])  # NAL units behind lengths, and after start codes
def test_without_a_b_pyramid_exactly_the_b_frames_are_unreferenced(tmp_path: Path, suffix: str) -> None:
    path = make_gop_clip(tmp_path / f"flat{suffix}", 24, {0, 13}, b_pyramid="none")
    with av.open(str(path)) as container:
        index = read_index(container)
    assert index is not None
    types = frame_types(path)
    b_frames = [i for i, pts in enumerate(index.pts) if types[pts] == "B"]
    assert b_frames and index.unreferenced == b_frames


def test_with_a_b_pyramid_the_reference_b_frames_are_kept(tmp_path: Path) -> None:
    path = make_gop_clip(tmp_path / "pyramid.mp4", 24, {0, 13})
    with av.open(str(path)) as container:
        index = read_index(container)
    assert index is not None
    types = frame_types(path)
    b_frames = {i for i, pts in enumerate(index.pts) if types[pts] == "B"}
    assert set(index.unreferenced) < b_frames  # a proper subset: the pyramid's middle B-frames are kept


def test_a_clip_without_b_frames_has_nothing_to_skip(tmp_path: Path) -> None:
    path = make_gop_clip(tmp_path / "camera.mp4", 24, {0, 13}, container_bframes=0)
    with av.open(str(path)) as container:
        index = read_index(container)
    assert index is not None and index.unreferenced == []


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (b"\x00\x00\x00\x03\x01\x9a\x00", 4),  # a slice with nal_ref_idc 0 behind a 4-byte length
        (b"\x00\x00\x00\x01\x09\x10\x00\x00\x01\x01\x9a", None),  # access unit delimiter, then the slice
    ],
)
def test_a_slice_with_nal_ref_idc_zero_is_unreferenced(data: bytes, size: int | None) -> None:
    assert is_unreferenced(data, size)


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (b"\x00\x00\x00\x03\x21\x9a\x00", 4),  # nal_ref_idc 1
        (b"\x00\x00\x00\x02\x06\x05", 4),  # SEI only: no slice
        (b"\x00\x00\x00\x09\x01\x9a", 4),  # a length past the packet's end
        (b"\x00\x00\x01\x01\x9a\x00\x00\x01\x14\x80", None),  # an MVC slice beside it
        (b"", None),
    ],
)
def test_anything_else_counts_as_referenced(data: bytes, size: int | None) -> None:
    assert not is_unreferenced(data, size)
