"""Odd videos: every one is decoded, frame i always means the same picture, and
RenderFrames(i) shows exactly what was embedded as frame i."""

from __future__ import annotations

import io
from pathlib import Path

import av
import av.error
import numpy as np
import pytest
from numpy.typing import NDArray
from odd_media import ODD_VIDEOS, upright
from PIL import Image

import services.embedder.decode as decode_module
from services.embedder.decode import FrameDecoder
from services.embedder.render import render_frames

EMBED_SIZE = (224, 224)
BY_NAME = {v.name: v for v in ODD_VIDEOS}
# FFmpeg decodes this damage without noticing, so its concealed pixels depend on the
# decoder's thread count (which is why FrameDecoder fixes it); the numbering does not.
SILENT_DAMAGE = {"damaged.mkv"}
# Damage the decoder reports: FrameDecoder decodes these again in one careful thread.
REPORTED_DAMAGE = {"damaged.mp4", "damaged-10bit.mp4"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("odd")
    return {v.name: v.write(folder) for v in ODD_VIDEOS}


def decode_all(path: Path, size: tuple[int, int] | None = None) -> list[NDArray[np.uint8]]:
    with FrameDecoder(path, size=size, gpu=False) as decoder:
        pairs = list(decoder.frames())
        assert decoder.frames_decoded == len(pairs)
    assert [i for i, _ in pairs] == list(range(len(pairs)))
    return [f for _, f in pairs]


def mean_error(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def scaled(rgb: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return np.asarray(frame.to_ndarray(width=size[0], height=size[1], format="rgb24"), dtype=np.uint8)


def nearest(frame: NDArray[np.uint8], candidates: list[NDArray[np.uint8]]) -> int:
    return int(np.argmin([mean_error(frame, c) for c in candidates]))


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_frame_i_is_the_ith_picture_shown_upright(corpus: dict[str, Path], name: str) -> None:
    video = BY_NAME[name]
    frames = decode_all(corpus[name])
    expected = [upright(p, video.rotation) for p in video.pictures()]
    if video.damage_at:
        assert len(expected) - 2 <= len(frames) <= len(expected)
        # Only the frames decoded before the damage are sure to be clean.
        checked = range(len(frames) // 4)
    else:
        assert len(frames) == len(expected)
        checked = range(len(frames))
    for i in checked:
        assert frames[i].shape == expected[i].shape, (i, frames[i].shape, expected[i].shape)
        assert nearest(frames[i], expected) == i, i
        assert mean_error(frames[i], expected[i]) < 16, i


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_render_shows_exactly_what_was_embedded(corpus: dict[str, Path], name: str) -> None:
    path = corpus[name]
    full = decode_all(path)
    embedded = decode_all(path, size=EMBED_SIZE)
    assert len(embedded) == len(full)
    picks = sorted({0, len(full) // 2, len(full) - 1})
    rendered = dict(render_frames(path, picks))
    assert sorted(rendered) == picks
    resized_full = [scaled(f, EMBED_SIZE) for f in full]
    for i in picks:
        png = np.asarray(Image.open(io.BytesIO(rendered[i])).convert("RGB"))
        np.testing.assert_array_equal(png, full[i])
        # Embedding scales inside the YUV->RGB conversion, the check scales RGB: close, not equal,
        # and closer to its own frame than to any other.
        assert embedded[i].shape == (EMBED_SIZE[1], EMBED_SIZE[0], 3)
        errors = [mean_error(embedded[i], r) for r in resized_full]
        assert errors[i] == min(errors) and errors[i] < 6, (i, errors[i], min(errors))


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_seeking_render_gives_every_third_frame_as_a_full_decode_does(
    corpus: dict[str, Path], name: str
) -> None:
    # With the frame count the embedding found, as the scheduler asks: GOP spans cut at the
    # last pick, unreferenced frames skipped. FFmpeg conceals silent damage with pixels that
    # depend on the frames its threads hold, which skipping changes: there only the frames
    # well before the damage are sure to match.
    path = corpus[name]
    full = decode_all(path)
    picks = list(range(1, len(full), 3))
    rendered = dict(render_frames(path, picks, frame_count=len(full)))
    assert sorted(rendered) == picks
    for i in [p for p in picks if name not in SILENT_DAMAGE or p < len(full) // 4]:
        png = np.asarray(Image.open(io.BytesIO(rendered[i])).convert("RGB"))
        np.testing.assert_array_equal(png, full[i], err_msg=f"frame {i}")


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_decoding_is_deterministic_and_threads_do_not_renumber(
    corpus: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = corpus[name]
    first = decode_all(path)
    again = decode_all(path)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    for threads in (1, 2, 8):
        monkeypatch.setattr(decode_module, "THREAD_COUNT", threads)
        other = decode_all(path)
        assert len(other) == len(first), threads
        if name not in SILENT_DAMAGE:
            assert all(np.array_equal(a, b) for a, b in zip(first, other, strict=True)), threads


def careful_reference(path: Path) -> list[NDArray[np.uint8]]:
    """One thread, packets the decoder rejects skipped: what a damaged stream must decode to."""
    out: list[NDArray[np.uint8]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError:
                continue
            out.extend(np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8) for f in frames)
    return out


@pytest.mark.parametrize("name", sorted(REPORTED_DAMAGE))
def test_reported_damage_decodes_as_one_careful_thread_does(corpus: dict[str, Path], name: str) -> None:
    frames = decode_all(corpus[name])
    reference = careful_reference(corpus[name])
    assert len(frames) == len(reference)
    assert all(np.array_equal(a, b) for a, b in zip(frames, reference, strict=True))
