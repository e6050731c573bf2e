"""The embed pipeline: decoding overlaps inference, memory stays bounded when the consumer is slow,
and a gRPC client that stops reading stops the decoder (real backpressure end to end)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from embedder_media import SIZE

from datapool.samples import make_video
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.embedder import batching, decode
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.embedding import FrameBatch, embed_file
from services.embedder.model import ModelBackend
from services.embedder.server import make_server

LONG_FRAMES = 400


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(
        tmp_path_factory.mktemp("long") / "long.mp4", scene_seed=21, n_frames=LONG_FRAMES, size=SIZE
    )


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
    made: list[batching.BatchDecoder] = []
    real_init = batching.BatchDecoder.__init__

    def init(self: batching.BatchDecoder, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(batching.BatchDecoder, "__init__", init)
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


def test_a_resolution_change_mid_stream_starts_a_new_batch(backend: TorchCpuBackend) -> None:
    """Frames of two sizes never share a buffer (a GPU backend takes frames at decoded size)."""

    class Source:
        path = Path("two-sizes.mp4")

        def frames(self, sampling: Any = None) -> Iterator[tuple[int, np.ndarray]]:
            for i in range(5):
                yield i, np.full((4, 6, 3), i, dtype=np.uint8)
            for i in range(5, 8):
                yield i, np.full((6, 4, 3), i, dtype=np.uint8)

        def close(self) -> None:
            pass

    worker = batching.BatchDecoder(Source(), backend, batch_size=4)  # type: ignore[arg-type]
    worker.start()
    shapes = []
    while not isinstance(item := worker.out.get(timeout=10), batching.Done):
        assert isinstance(item, batching.Pixels)
        shapes.append((item.frame_indices, item.frames.shape[1:3]))
        assert [int(f[0, 0, 0]) for f in item.frames] == item.frame_indices
        worker.release(item)
    assert shapes == [([0, 1, 2, 3], (4, 6)), ([4], (4, 6)), ([5, 6, 7], (6, 4))]
