from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from embedder_media import N_FRAMES, SIZE, Media

from datapool.errors import FailedPrecondition
from datapool.samples import CorruptKind
from datapool.sampling import Sampling
from services.embedder.decode import FrameDecoder, Stopped, UndecodableFile, media_kind


def decode(path: Path, size: tuple[int, int] | None = None) -> tuple[list[int], list[np.ndarray]]:
    with FrameDecoder(path, size=size) as decoder:
        pairs = list(decoder.frames())
    return [i for i, _ in pairs], [f for _, f in pairs]


def test_video_frames_are_numbered_from_zero(media: Media) -> None:
    with FrameDecoder(media.videos[0]) as decoder:
        info = decoder.info
        indices, frames = zip(*decoder.frames(), strict=True)
    assert list(indices) == list(range(N_FRAMES))
    assert (info.kind, info.width, info.height, info.fps, info.codec) == ("video", *SIZE, 10.0, "h264")
    assert info.frame_count_hint == N_FRAMES
    assert all(f.shape == (SIZE[1], SIZE[0], 3) and f.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("attr", ["avi", "mkv"])
def test_other_containers(media: Media, attr: str) -> None:
    indices, _ = decode(getattr(media, attr))
    assert indices == list(range(N_FRAMES))


def test_decoding_is_deterministic(media: Media) -> None:
    first = decode(media.videos[1])
    second = decode(media.videos[1])
    assert first[0] == second[0]
    assert all(np.array_equal(a, b) for a, b in zip(first[1], second[1], strict=True))


def test_scaled_decode_matches_the_requested_size(media: Media) -> None:
    indices, frames = decode(media.videos[0], size=(224, 224))
    assert len(indices) == N_FRAMES
    assert frames[0].shape == (224, 224, 3)


@pytest.mark.parametrize("attr", ["png", "jpg"])
def test_images_are_one_frame(media: Media, attr: str) -> None:
    path = getattr(media, attr)
    with FrameDecoder(path) as decoder:
        assert decoder.info.kind == "image"
        assert (decoder.info.width, decoder.info.height) == SIZE
        pairs = list(decoder.frames())
    assert [i for i, _ in pairs] == [0]
    assert pairs[0][1].shape == (SIZE[1], SIZE[0], 3)
    _, scaled = decode(path, size=(224, 224))
    assert scaled[0].shape == (224, 224, 3)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("random", "corrupt: invalid data"),
        ("truncated", "corrupt: invalid data"),  # mp4 keeps its index at the end
        ("empty", "empty file"),
        ("no_video", "not a video: no video stream"),
    ],
)
def test_broken_files_are_undecodable(media: Media, kind: CorruptKind, reason: str) -> None:
    with pytest.raises(UndecodableFile) as caught:
        decode(media.corrupt[kind])
    assert caught.value.reason.startswith(reason), caught.value.reason
    assert isinstance(caught.value, FailedPrecondition)


def test_truncated_mkv_decodes_fewer_frames(media: Media) -> None:
    indices, _ = decode(media.truncated_mkv)
    assert 0 < len(indices) < 60
    assert indices == list(range(len(indices)))


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert media_kind(path) is None
    with pytest.raises(UndecodableFile, match="unsupported extension"):
        FrameDecoder(path)


def test_image_with_garbage_inside(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(UndecodableFile, match="corrupt"):
        FrameDecoder(path)


def test_only_converts_the_wanted_frames_but_counts_all(media: Media) -> None:
    _, every = decode(media.videos[2])
    with FrameDecoder(media.videos[2]) as decoder:
        picked = list(decoder.frames(only={2, 5}))
        assert decoder.frames_decoded == N_FRAMES
    assert [i for i, _ in picked] == [2, 5]
    assert all(np.array_equal(frame, every[i]) for i, frame in picked)


def test_a_set_stop_ends_decoding_at_the_next_frame_even_between_kept_ones(media: Media) -> None:
    stop = threading.Event()
    with FrameDecoder(media.videos[0], gpu=False) as decoder:
        frames = decoder.frames(sampling=Sampling(every_nth=N_FRAMES), stop=stop)
        assert next(frames)[0] == 0
        stop.set()
        # Frames 1.. are not kept: without the stop they would all be decoded before next() returned.
        with pytest.raises(Stopped):
            next(frames)
        assert decoder.frames_decoded == 1
