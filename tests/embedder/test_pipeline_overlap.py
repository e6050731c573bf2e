"""The embed pipeline: decoding overlaps inference, memory stays bounded when the consumer is slow,
and a gRPC client that stops reading stops the decoder (real backpressure end to end)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import grpc
import numpy as np
import pytest
from embedder_media import SIZE

from datapool.samples import Scene, make_video
from datapool.sampling import Sampling
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.embedder import batching, decode
from services.embedder.backends.base import ModelBackend
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.embedding import FrameBatch, embed_file
from services.embedder.server import make_server

LONG_FRAMES = 400
# ~1 ms a frame to decode at 1080p: long enough that decoding it all takes seconds.
SPARSE_FRAMES = 2000


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(
        tmp_path_factory.mktemp("long") / "long.mp4", scene_seed=21, n_frames=LONG_FRAMES, size=SIZE
    )


def repeated_gop_video(path: Path, size: tuple[int, int], gop: int, repeats: int) -> Path:
    """A long H.264 video made in well under a second: one closed GOP (no B-frames) encoded
    once and muxed `repeats` times. Decoding it costs what any video of its length costs."""
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.thread_count = 1
    encoder.options = {"preset": "ultrafast", "crf": "35", "g": str(gop), "bf": "0"}
    scene = Scene(9, size)
    packets: list[av.Packet[Any]] = []
    for t in range(gop):
        frame = av.VideoFrame.from_ndarray(scene.frame(3 * t), format="rgb24")
        frame.pts = t
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    assert len(packets) == gop and packets[0].is_keyframe
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("h264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 25)
        for r in range(repeats):
            for packet in packets:
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts = (packet.pts or 0) + r * gop, (packet.dts or 0) + r * gop
                copy.time_base = Fraction(1, 25)
                copy.is_keyframe = packet.is_keyframe
                copy.stream = stream
                container.mux(copy)
    return path


@pytest.fixture(scope="module")
def sparse_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sparse")
    return repeated_gop_video(folder / "sparse.mp4", (1920, 1080), gop=4, repeats=SPARSE_FRAMES // 4)


def record_workers(monkeypatch: pytest.MonkeyPatch) -> list[batching.BatchDecoder]:
    """The BatchDecoders made from now on, to look into once they ran."""
    made: list[batching.BatchDecoder] = []
    real_init = batching.BatchDecoder.__init__

    def init(self: batching.BatchDecoder, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(batching.BatchDecoder, "__init__", init)
    return made


class FrameClock:
    """Counts (and times) the frames the real decoder hands to the pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.times: list[float] = []
        real = decode.FrameDecoder.frames
        clock = self

        def frames(self: decode.FrameDecoder, **kwargs: Any) -> Iterator[tuple[int, Any]]:
            for item in real(self, **kwargs):
                clock.times.append(time.monotonic())
                yield item

        monkeypatch.setattr(decode.FrameDecoder, "frames", frames)

    @property
    def count(self) -> int:
        return len(self.times)


class TimedBackend(ModelBackend):
    """The real CPU backend, recording when each embed call ran."""

    def __init__(self, inner: TorchCpuBackend) -> None:
        self.inner = inner
        self.name, self.model_id, self.reason = inner.name, inner.model_id, inner.reason
        self.calls: list[tuple[float, float]] = []

    def embed(self, frames: np.ndarray) -> np.ndarray:
        started = time.monotonic()
        out = self.inner.embed(frames)
        self.calls.append((started, time.monotonic()))
        return out


def test_decoding_runs_while_the_model_embeds(
    backend: TorchCpuBackend, long_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrameClock(monkeypatch)
    timed = TimedBackend(backend)
    events = embed_file(long_video, timed, batch_size=8)
    for _ in range(6):
        next(events)
    events.close()
    # Frames were decoded inside the model's calls, i.e. the two stages overlapped.
    overlapped = [t for t in clock.times if any(a < t < b for a, b in timed.calls)]
    assert len(timed.calls) >= 4
    assert len(overlapped) >= 8, (len(overlapped), timed.calls)


def test_a_slow_consumer_stops_the_decoder_with_bounded_buffers(
    backend: TorchCpuBackend, long_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrameClock(monkeypatch)
    made = record_workers(monkeypatch)
    batch = 8
    events = embed_file(long_video, backend, batch_size=batch)
    next(events)  # info
    assert isinstance(next(events), FrameBatch)
    time.sleep(1.0)  # the consumer dawdles: the decoder must stop, not pile up frames
    stalled_at = clock.count
    time.sleep(1.0)
    assert clock.count == stalled_at
    # One batch taken, at most MAX_BUFFERS filled or queued, one frame in the decoder's hand.
    assert stalled_at <= (1 + batching.MAX_BUFFERS) * batch + 1
    rest = [e for e in events if isinstance(e, FrameBatch)]
    assert sum(len(b.frame_indices) for b in rest) == LONG_FRAMES - batch
    assert made[0].buffers_made <= batching.MAX_BUFFERS


def test_a_client_that_stops_reading_stops_the_decoder(
    backend: TorchCpuBackend, long_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrameClock(monkeypatch)
    server = make_server(backend, "127.0.0.1:0", max_workers=4)
    server.start()
    try:
        # BDP probing would grow the stream window to megabytes (the whole clip's vectors) while the
        # client does not read: with it off the window stays at 64 KiB, a few messages.
        options = [("grpc.http2.bdp_probe", 0)]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            ref = common_pb2.FileRef(path=long_video.name, size=long_video.stat().st_size)
            request = embedder_pb2.EmbedFileRequest(
                source=local_location(str(long_video.parent)),
                file=ref,
                dtype=common_pb2.FLOAT32,
                batch_size=16,
            )
            stream = stub.EmbedFile(request, timeout=60)
            assert next(stream).WhichOneof("event") == "info"
            assert next(stream).WhichOneof("event") == "batch"
            time.sleep(3.0)  # the client reads nothing: flow control must reach the decoder
            stalled_at = clock.count
            time.sleep(1.5)
            assert clock.count == stalled_at
            # Read by the client (1), in gRPC's hands (window and the send under way: ~2),
            # and the pipeline's own buffers: measured 96 frames, i.e. 6 batches.
            assert stalled_at <= (1 + 2 + batching.MAX_BUFFERS) * 16, stalled_at
            stream.cancel()
    finally:
        server.stop(0)
    deadline = time.monotonic() + 10
    while any(t.name == "decode-long.mp4" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "decode-long.mp4"]


def test_a_cancelled_embed_stops_between_sampled_frames(
    backend: TorchCpuBackend, sparse_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sparse rule nothing reaches the consumer for long stretches of decoding; a
    consumer that goes away must still stop the decoder at once, not at the next kept frame."""
    made = record_workers(monkeypatch)
    events = embed_file(sparse_video, backend, batch_size=1, sampling=Sampling(every_nth=SPARSE_FRAMES))
    next(events)  # info
    first = next(events)
    assert isinstance(first, FrameBatch) and first.frame_indices == [0]
    started = time.monotonic()
    events.close()  # while the decoder works through frames 1..SPARSE_FRAMES-1, all skipped
    stopped_in = time.monotonic() - started
    worker = made[0]
    assert not worker.is_alive()
    assert stopped_in < 1.0, stopped_in
    assert worker.decoder.frames_decoded < SPARSE_FRAMES // 2, worker.decoder.frames_decoded


class SizedFrames:
    """Frames of the given (count, height, width) runs, frame i filled with the value i."""

    path = Path("sized.mp4")

    def __init__(self, runs: Sequence[tuple[int, int, int]]) -> None:
        self.runs = runs

    def frames(self, sampling: Any = None, stop: Any = None) -> Iterator[tuple[int, np.ndarray]]:
        index = 0
        for count, height, width in self.runs:
            for _ in range(count):
                yield index, np.full((height, width, 3), index, dtype=np.uint8)
                index += 1

    def close(self) -> None:
        pass


def drain(worker: batching.BatchDecoder) -> list[batching.Pixels]:
    worker.start()
    batches = []
    while not isinstance(item := worker.out.get(timeout=10), batching.Done):
        assert isinstance(item, batching.Pixels)
        assert [int(f[0, 0, 0]) for f in item.frames] == item.frame_indices
        batches.append(item)
        worker.release(item)
    return batches


def test_a_resolution_change_mid_stream_starts_a_new_batch(backend: TorchCpuBackend) -> None:
    """Frames of two sizes never share a buffer (a GPU backend takes frames at decoded size)."""
    source = SizedFrames([(5, 4, 6), (3, 6, 4)])
    batches = drain(batching.BatchDecoder(source, backend, batch_size=4))  # type: ignore[arg-type]
    shapes = [(b.frame_indices, b.frames.shape[1:3]) for b in batches]
    assert shapes == [([0, 1, 2, 3], (4, 6)), ([4], (4, 6)), ([5, 6, 7], (6, 4))]


def test_large_frames_come_in_smaller_batches_so_a_buffer_stays_under_its_cap(
    backend: TorchCpuBackend,
) -> None:
    """Pinned buffers of batch_size full-size frames would be GBs at 4K: a buffer holds
    at most max_buffer_bytes, so large frames come in batches below batch_size."""
    large, small = 30 * 40 * 3, 4 * 6 * 3
    cap = 3 * large + large // 2
    source = SizedFrames([(7, 30, 40), (5, 4, 6)])
    worker = batching.BatchDecoder(source, backend, batch_size=4, max_buffer_bytes=cap)  # type: ignore[arg-type]
    batches = drain(worker)
    assert [b.frame_indices for b in batches] == [[0, 1, 2], [3, 4, 5], [6], [7, 8, 9, 10], [11]]
    assert all(b.buffer.nbytes <= cap for b in batches)
    assert [b.buffer.nbytes for b in batches] == [3 * large] * 3 + [4 * small] * 2
    # A frame larger than the cap still gets a buffer of its own.
    alone = drain(batching.BatchDecoder(SizedFrames([(2, 30, 40)]), backend, 4, max_buffer_bytes=10))  # type: ignore[arg-type]
    assert [b.frame_indices for b in alone] == [[0], [1]]
