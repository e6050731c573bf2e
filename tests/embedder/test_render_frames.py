from __future__ import annotations

import io
import threading
from collections.abc import Generator, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from embedder_media import N_FRAMES, SIZE, Media
from gop_media import make_gop_clip
from PIL import Image

from datapool.errors import InvalidArgument
from services.embedder import render, span_decode
from services.embedder.decode import Frame, FrameDecoder
from services.embedder.frame_encoding import ImageFormat
from services.embedder.gop_plan import PacketIndex, Span, plan
from services.embedder.render import render_frames
from services.embedder.span_decode import SpanMismatch, decode_spans, decode_spans_on_threads

GOP_FRAMES = 48
# Keyframes 5 and 6 back to back, then GOPs of 11, 13 and 14 frames.
VARIABLE_KEYFRAMES = {0, 5, 6, 17, 30, 44}


def decoded(path: Path) -> dict[int, Frame]:
    with FrameDecoder(path, gpu=False) as decoder:
        return dict(decoder.frames())


def pixels(data: bytes) -> Frame:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def never_from_the_start(*args: object) -> None:
    raise AssertionError("decoded from the first frame")


@pytest.fixture(scope="module")
def variable_gop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_gop_clip(tmp_path_factory.mktemp("gop") / "variable.mp4", GOP_FRAMES, VARIABLE_KEYFRAMES)


@pytest.fixture(scope="module")
def open_gop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_gop_clip(tmp_path_factory.mktemp("gop") / "open.mp4", GOP_FRAMES, {0, 16, 32}, open_gop=True)


def test_pngs_round_trip_to_the_decoded_frames(media: Media) -> None:
    full = decoded(media.videos[1])
    rendered = list(render_frames(media.videos[1], [9, 0, 4, 9]))
    assert [i for i, _ in rendered] == [0, 4, 9]
    for index, png in rendered:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == SIZE
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), full[index])


@pytest.mark.parametrize(
    "picks",
    [
        [0, GOP_FRAMES - 1],  # the first and the last frame
        [5, 6, 7, 17, 18, 30, 44],  # keyframes and the frames right after them
        [4, 16, 29, 43],  # the last frame of a GOP
        list(range(GOP_FRAMES)),
    ],
)
def test_seeking_renders_the_frames_a_full_decode_gives_on_a_variable_gop_clip(
    variable_gop: Path, picks: list[int]
) -> None:
    full = decoded(variable_gop)
    rendered = dict(render_frames(variable_gop, picks, frame_count=GOP_FRAMES))
    assert sorted(rendered) == sorted(picks)
    for index, png in rendered.items():
        np.testing.assert_array_equal(pixels(png), full[index], err_msg=f"frame {index}")


@pytest.mark.parametrize("picks", [[31], [15], [16, 31, 32, 40]])
def test_leading_frames_of_an_open_gop_render_as_a_full_decode_gives_them(
    open_gop: Path, picks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Frames 15 and 31 are shown before, but decoded after, the I-frames 16 and 32, and refer
    # to the GOP before: no span may start at those I-frames (the decoder stops at such a
    # frame's missing references), and the picks still come from seeking, with no garbage.
    monkeypatch.setattr(render, "_from_the_start", never_from_the_start)
    full = decoded(open_gop)
    rendered = dict(render_frames(open_gop, picks, frame_count=GOP_FRAMES))
    assert sorted(rendered) == picks
    for index, png in rendered.items():
        np.testing.assert_array_equal(pixels(png), full[index], err_msg=f"frame {index}")


def spied_spans(monkeypatch: pytest.MonkeyPatch) -> list[tuple[PacketIndex, list[Span]]]:
    """What render_frames hands the span decoder; a decode from the first frame fails the test."""
    seen: list[tuple[PacketIndex, list[Span]]] = []

    def spy(path: Path, index: PacketIndex, spans: list[Span]) -> Iterator[tuple[int, Frame]]:
        seen.append((index, spans))
        return decode_spans_on_threads(path, index, spans)

    monkeypatch.setattr(render, "decode_spans_on_threads", spy)
    monkeypatch.setattr(render, "_from_the_start", never_from_the_start)
    return seen


def test_only_the_gops_holding_picks_are_decoded_and_only_up_to_their_last_pick(
    variable_gop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = spied_spans(monkeypatch)
    rendered = render_frames(variable_gop, [7, 31, 32], frame_count=GOP_FRAMES)
    assert sorted(i for i, _ in rendered) == [7, 31, 32]
    [(index, spans)] = seen
    assert [s.start for s in spans] == [6, 30]  # the keyframes before the picks, nothing before or between
    shown = sorted(index.pts)
    for span, picks in zip(spans, [[7], [31, 32]], strict=True):
        # In decode order a frame follows the frames it refers to: nothing after the last pick's packet.
        assert span.end == max(index.pts.index(shown[f]) for f in picks) + 1


def test_frames_no_frame_refers_to_are_not_decoded_unless_picked(
    variable_gop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = spied_spans(monkeypatch)
    picks = [1, 4, 12, 16, 23, 29, 41, 47]
    rendered = dict(render_frames(variable_gop, picks, frame_count=GOP_FRAMES))
    [(index, spans)] = seen
    shown = sorted(index.pts)
    picked = {index.pts.index(shown[f]) for f in picks}
    inside = {i for s in spans for i in range(s.start, s.end)}
    skipped = {i for s in spans for i in s.skip}
    assert skipped and skipped == (set(index.unreferenced) & inside) - picked
    assert picked <= {i for s in spans for i in s.fed()}
    reference = plain_pyav_decode(variable_gop)
    assert sorted(rendered) == picks
    for frame, png in rendered.items():
        np.testing.assert_array_equal(pixels(png), reference[frame], err_msg=f"frame {frame}")


def plain_pyav_decode(path: Path) -> list[Frame]:
    """Every frame, decoded with PyAV's defaults from the first, in presentation order."""
    with av.open(str(path)) as container:
        frames = {int(f.pts or 0): f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    assert len(frames) == GOP_FRAMES  # every frame has a pts of its own
    return [np.asarray(frames[pts], dtype=np.uint8) for pts in sorted(frames)]


def test_gops_that_only_meet_are_separate_spans_so_that_they_decode_in_parallel() -> None:
    # Twelve frames without B-frames, keyframes at 0, 4 and 8: the picks 3 and 4 end one GOP's
    # span where the next one's starts.
    index = PacketIndex(pts=list(range(12)), keyframes=[0, 4, 8])
    spans = plan(index, [3, 4, 9], 12)
    assert spans is not None
    assert [(s.start, s.end, sorted(s.wanted.values())) for s in spans] == [
        (0, 4, [3]),
        (4, 5, [4]),
        (8, 10, [9]),
    ]


def test_the_gops_holding_picks_decode_at_the_same_time_into_a_plain_decodes_pixels(
    variable_gop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each span's decode waits for the other's to start: one after the other, it times out.
    both_started = threading.Barrier(2, timeout=10)

    def meet(container: object, index: PacketIndex, spans: list[Span]) -> Iterator[tuple[int, Frame]]:
        both_started.wait()
        yield from decode_spans(container, index, spans)

    monkeypatch.setattr(span_decode, "decode_spans", meet)
    monkeypatch.setattr(render, "_from_the_start", never_from_the_start)
    picks = [7, 12, 31, 40]  # two spans: from the keyframes 6 and 30
    rendered = dict(render_frames(variable_gop, picks, frame_count=GOP_FRAMES))
    reference = plain_pyav_decode(variable_gop)
    assert sorted(rendered) == picks
    for frame, png in rendered.items():
        np.testing.assert_array_equal(pixels(png), reference[frame], err_msg=f"frame {frame}")


def test_a_gop_that_does_not_decode_as_planned_leaves_its_frames_to_a_decode_from_the_start(
    variable_gop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails_at_30(container: object, index: PacketIndex, spans: list[Span]) -> Iterator[tuple[int, Frame]]:
        if spans[0].start == 30:
            raise SpanMismatch("planted")
        yield from decode_spans(container, index, spans)

    monkeypatch.setattr(span_decode, "decode_spans", fails_at_30)
    picks = [1, 7, 18, 31, 40]
    rendered = list(render_frames(variable_gop, picks, frame_count=GOP_FRAMES))
    reference = plain_pyav_decode(variable_gop)
    assert sorted(i for i, _ in rendered) == picks  # each once
    for frame, png in rendered:
        np.testing.assert_array_equal(pixels(png), reference[frame], err_msg=f"frame {frame}")


def test_a_render_stopped_early_leaves_no_decode_thread_running(variable_gop: Path) -> None:
    frames = render_frames(variable_gop, list(range(GOP_FRAMES)), frame_count=GOP_FRAMES)
    next(frames)
    assert isinstance(frames, Generator)
    frames.close()  # as RenderFrames does when its caller has gone
    assert not [t for t in threading.enumerate() if t.name == "render-decode"]


@pytest.mark.parametrize("frame_count", [GOP_FRAMES - 1, None])
def test_without_a_frame_count_that_the_packets_agree_with_it_decodes_from_the_start(
    variable_gop: Path, monkeypatch: pytest.MonkeyPatch, frame_count: int | None
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("seeked although no frame count vouches for the packets")

    monkeypatch.setattr(render, "decode_spans_on_threads", never)
    full = decoded(variable_gop)
    [(index, png)] = list(render_frames(variable_gop, [20], frame_count=frame_count))
    np.testing.assert_array_equal(pixels(png), full[index])


def test_jpg_frames_are_jpegs_of_the_frame_at_the_quality_asked(variable_gop: Path) -> None:
    full = decoded(variable_gop)
    [(_, low)] = list(render_frames(variable_gop, [20], ImageFormat("jpg", 20)))
    [(_, high)] = list(render_frames(variable_gop, [20], ImageFormat("jpg", 95)))
    assert Image.open(io.BytesIO(high)).format == "JPEG"
    assert len(low) < len(high)
    error = np.abs(pixels(high).astype(int) - full[20]).mean()
    assert error < 3, error


@pytest.mark.parametrize(
    ("name", "quality", "key"), [("gif", 0, "image_format"), ("jpg", 101, "jpg_quality")]
)
def test_a_bad_image_format_is_refused_naming_the_field(name: str, quality: int, key: str) -> None:
    with pytest.raises(InvalidArgument, match=key):
        ImageFormat.from_request(name, quality)


def test_an_image_renders_as_frame_zero(media: Media) -> None:
    [(index, png)] = list(render_frames(media.jpg, [0]))
    assert index == 0 and Image.open(io.BytesIO(png)).size == SIZE


def test_index_beyond_the_end_is_named(media: Media) -> None:
    with pytest.raises(InvalidArgument, match=f"frame {N_FRAMES + 5} is beyond the end.*{N_FRAMES} frames"):
        list(render_frames(media.videos[0], [1, N_FRAMES + 5]))


def test_negative_index(media: Media) -> None:
    with pytest.raises(InvalidArgument, match="-1"):
        list(render_frames(media.videos[0], [-1]))


def test_nothing_requested_decodes_nothing(media: Media) -> None:
    assert list(render_frames(media.corrupt["random"], [])) == []
