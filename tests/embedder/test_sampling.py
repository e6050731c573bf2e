"""Frame sampling: which frames get embedded, always under their index in the whole video."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from embedder_media import N_FRAMES, Media
from odd_media import VFR_PTS_MS, OddVideo

from datapool.config import parse_run_config
from datapool.errors import InvalidArgument
from datapool.sampling import Sampling
from datapool.storage.locations import local_location
from datapool.v1 import embedder_pb2, embedder_pb2_grpc
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.decode import FrameDecoder
from services.embedder.embedding import EmbedSummary, FrameBatch, embed_file
from services.embedder.sampling import FramePicker
from services.scheduler.remotes import sampling_pb

TIMEOUT = 30.0


def first_at_or_after_each_multiple(times: list[Fraction], rate: Fraction) -> list[int]:
    """The rule as written: for every multiple m/rate up to the last frame, the first frame
    at or after it (times relative to the first frame)."""
    start = times[0]
    relative = [t - start for t in times]
    kept: set[int] = set()
    m = 0
    while m / rate <= relative[-1]:
        kept.add(next(i for i, t in enumerate(relative) if t >= m / rate))
        m += 1
    return sorted(kept)


def picked(sampling: Sampling, pts: list[int | None], time_base: Fraction | None, fps: float) -> list[int]:
    picker = FramePicker(sampling, fps)
    return [i for i, p in enumerate(pts) if picker.keep(i, p, time_base)]


def test_every_nth_keeps_zero_n_2n() -> None:
    pts: list[int | None] = list(range(10))
    assert picked(Sampling(every_nth=3), pts, Fraction(1, 10), 10.0) == [0, 3, 6, 9]
    assert picked(Sampling(), pts, Fraction(1, 10), 10.0) == list(range(10))


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 40.0])
def test_target_fps_matches_the_rule_on_constant_and_variable_rates(rate: float) -> None:
    constant = list(range(30))
    variable = [5 + p for p in VFR_PTS_MS]  # the first frame need not be at 0
    for pts, time_base in ((constant, Fraction(1, 10)), (variable, Fraction(1, 1000))):
        expected = first_at_or_after_each_multiple([p * time_base for p in pts], Fraction(rate))
        assert picked(Sampling(target_fps=rate), list(pts), time_base, 10.0) == expected


def test_target_fps_on_a_burst_then_gaps() -> None:
    # 10 frames in the first 0.1 s, then 1 s apart, then 30 frames/s: 2 per second keeps the
    # first frame, each lone frame after a gap, and the first at or after 3.5 s (3.528 s).
    assert picked(Sampling(target_fps=2), list(VFR_PTS_MS), Fraction(1, 1000), 0.0) == [0, 10, 11, 12, 28]


def test_missing_pts_falls_back_to_index_over_fps() -> None:
    assert picked(Sampling(target_fps=5), [None] * 10, None, 10.0) == [0, 2, 4, 6, 8]
    # Neither pts nor a rate: time is unknown, so nothing is dropped.
    assert picked(Sampling(target_fps=5), [None] * 4, None, 0.0) == [0, 1, 2, 3]


def test_frames_with_and_without_pts_share_one_clock_from_the_first_frame() -> None:
    # Frames 0-3 are 0.5 s apart from pts 5 s on, frames 4-9 have no pts: they go on from
    # frame 3 (1.5 s) at the nominal 10 frames/s, so 2 per second keeps the one at 2.0 s.
    late_then_missing: list[int | None] = [50, 55, 60, 65, None, None, None, None, None, None]
    assert picked(Sampling(target_fps=2), late_then_missing, Fraction(1, 10), 10.0) == [0, 1, 2, 3, 8]
    # Frames 0-1 have no pts (0 s, 0.1 s); the first pts (at 5 s) is frame 2, so at 0.2 s.
    missing_then_late: list[int | None] = [None, None, *range(50, 58)]
    assert picked(Sampling(target_fps=5), missing_then_late, Fraction(1, 10), 10.0) == [0, 2, 4, 6, 8]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_nth": 0}, "every_nth must be >= 1"),
        ({"target_fps": 0.0}, "target_fps must be a finite number > 0"),
        ({"target_fps": math.inf}, "target_fps must be a finite number > 0"),
        ({"every_nth": 2, "target_fps": 1.0}, "only one of"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sampling(**kwargs)  # type: ignore[arg-type]


def decoded_pts(path: Path) -> tuple[list[int], Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [f.pts for f in container.decode(stream)]
        assert stream.time_base is not None and None not in pts
        return [int(p or 0) for p in pts], Fraction(stream.time_base)


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv"])
def test_decoder_samples_a_vfr_video_evenly_in_time(tmp_path: Path, name: str) -> None:
    path = OddVideo(name, n_frames=len(VFR_PTS_MS), pts_ms=VFR_PTS_MS).write(tmp_path)
    pts, time_base = decoded_pts(path)
    with FrameDecoder(path, gpu=False) as decoder:
        every = dict(decoder.frames())
    with FrameDecoder(path, gpu=False) as decoder:
        kept = list(decoder.frames(sampling=Sampling(target_fps=2)))
        assert decoder.frames_decoded == len(every) == len(VFR_PTS_MS)
    expected = first_at_or_after_each_multiple([p * time_base for p in pts], Fraction(2))
    assert [i for i, _ in kept] == expected == [0, 10, 11, 12, 28]
    assert all(np.array_equal(frame, every[i]) for i, frame in kept)


def test_only_and_sampling_combine(media: Media) -> None:
    with FrameDecoder(media.videos[0], gpu=False) as decoder:
        kept = [i for i, _ in decoder.frames(only={1, 2, 3, 4}, sampling=Sampling(every_nth=2))]
        assert decoder.frames_decoded == N_FRAMES
    assert kept == [2, 4]


def test_embed_file_embeds_the_sampled_frames_and_counts_all(backend: TorchCpuBackend, media: Media) -> None:
    every = list(embed_file(media.videos[1], backend, batch_size=N_FRAMES))
    sampled = list(embed_file(media.videos[1], backend, batch_size=2, sampling=Sampling(every_nth=5)))
    all_batch = next(e for e in every if isinstance(e, FrameBatch))
    batches = [e for e in sampled if isinstance(e, FrameBatch)]
    assert [i for b in batches for i in b.frame_indices] == [0, 5, 10]
    summary = sampled[-1]
    assert isinstance(summary, EmbedSummary) and summary.frame_count == N_FRAMES
    vectors = np.concatenate([b.vectors for b in batches])
    np.testing.assert_allclose(vectors, all_batch.vectors[[0, 5, 10]], atol=1e-4)


def test_an_image_is_frame_zero_under_any_rule(backend: TorchCpuBackend, media: Media) -> None:
    events = list(embed_file(media.jpg, backend, sampling=Sampling(target_fps=0.1)))
    assert [i for e in events if isinstance(e, FrameBatch) for i in e.frame_indices] == [0]


def embed_rpc(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media, sampling: embedder_pb2.FrameSampling
) -> list[embedder_pb2.EmbedFileResponse]:
    request = embedder_pb2.EmbedFileRequest(
        source=local_location(str(media.root)), file=media.ref(media.videos[2]), sampling=sampling
    )
    return list(embedder_stub.EmbedFile(request, timeout=TIMEOUT))


def test_embed_file_rpc_samples(embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media) -> None:
    responses = embed_rpc(embedder_stub, media, embedder_pb2.FrameSampling(target_fps=2.5))
    indices = [i for r in responses if r.HasField("batch") for i in r.batch.frame_indices]
    assert indices == [0, 4, 8]  # 10 frames/s, a frame every 0.4 s
    assert responses[-1].done.frame_count == N_FRAMES
    assert responses[0].info.decoder in ("h264", "h264 (cuda)")
    unset = embed_rpc(embedder_stub, media, embedder_pb2.FrameSampling())
    assert [i for r in unset if r.HasField("batch") for i in r.batch.frame_indices] == list(range(N_FRAMES))


@pytest.mark.parametrize(
    ("sampling", "needle"),
    [
        (embedder_pb2.FrameSampling(every_nth=-1), "sampling.every_nth"),
        (embedder_pb2.FrameSampling(target_fps=-2.0), "sampling.target_fps"),
        (embedder_pb2.FrameSampling(target_fps=math.nan), "sampling.target_fps"),
        (embedder_pb2.FrameSampling(every_nth=2, target_fps=1.0), "only one of"),
    ],
)
def test_embed_file_rpc_refuses_bad_sampling(
    embedder_stub: embedder_pb2_grpc.EmbedderStub,
    media: Media,
    sampling: embedder_pb2.FrameSampling,
    needle: str,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        embed_rpc(embedder_stub, media, sampling)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (caught.value.details() or "")


SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


@pytest.mark.parametrize(
    ("frame_sampling", "needle"),
    [
        ({"every_nth": 0}, "worker_config.frame_sampling.every_nth"),
        ({"every_nth": "2"}, "worker_config.frame_sampling.every_nth"),
        ({"every_nth": 2.0}, "worker_config.frame_sampling.every_nth"),
        (
            {"every_nth": 2**31},
            "worker_config.frame_sampling.every_nth: input should be less than or equal to 2147483647",
        ),
        ({"target_fps": -1}, "worker_config.frame_sampling.target_fps"),
        ({"target_fps": math.inf}, "worker_config.frame_sampling.target_fps"),
        ({"target_fps": math.nan}, "worker_config.frame_sampling.target_fps"),
        ({"target_fps": True}, "worker_config.frame_sampling.target_fps"),
        ({"every": 2}, "worker_config.frame_sampling.every: unknown key"),
        ({"every_nth": 2, "target_fps": 1.0}, "worker_config.frame_sampling: set only one"),
    ],
)
def test_bad_frame_sampling_config_names_its_key(frame_sampling: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_run_config({"frame_sampling": frame_sampling}, SELECTION)
    assert needle in str(caught.value)


def test_frame_sampling_config_reaches_the_rule() -> None:
    config = parse_run_config({"frame_sampling": {"target_fps": 2}}, SELECTION).worker.frame_sampling
    assert Sampling.from_pb(sampling_pb(config)) == Sampling(target_fps=2.0)
    # The largest every_nth the config takes fits the request's int32.
    every_nth = parse_run_config(
        {"frame_sampling": {"every_nth": 2**31 - 1}}, SELECTION
    ).worker.frame_sampling.every_nth
    assert every_nth == 2**31 - 1
    assert embedder_pb2.FrameSampling(every_nth=every_nth).every_nth == every_nth
    default = parse_run_config({}, SELECTION).worker.frame_sampling
    assert Sampling.from_pb(sampling_pb(default)).keeps_all
