"""RenderFrames writes its frames on a few threads: the writes overlap, stay bounded, keep the
order of the response, and one frame that cannot be written is reported while the others land."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from embedder_media import Media

from datapool.errors import DatapoolError
from datapool.storage import ForwardingStore, LocalStore, Store, StoreFull
from datapool.storage.locations import local_location
from datapool.v1 import embedder_pb2, embedder_pb2_grpc
from services.embedder.frame_writes import FrameWriter

TIMEOUT = 30.0


class SlowStore(ForwardingStore):
    """Each put takes `delay` seconds, like a cloud store's round trip; counts puts at once."""

    def __init__(self, inner: Store, delay: float, fail: frozenset[str] = frozenset()) -> None:
        super().__init__(inner)
        self.delay, self.fail = delay, fail
        self.lock = threading.Lock()
        self.now = self.most = 0

    def put(self, key: str, data: bytes) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.delay)
            if key in self.fail:
                raise StoreFull(f"{key}: the store said no")
            super().put(key, data)
        finally:
            with self.lock:
                self.now -= 1


def test_writes_overlap_and_stay_within_the_thread_count(tmp_path: Path) -> None:
    store = SlowStore(LocalStore(tmp_path), delay=0.2)
    keys = [f"frames/r/f{i}.png" for i in range(16)]
    start = time.monotonic()
    with FrameWriter(store, threads=8, max_pending=8) as writer:
        for i, key in enumerate(keys):
            writer.submit(i, [key], f"image {i}".encode())
        written = writer.finish()
    elapsed = time.monotonic() - start
    assert written == set(keys)
    assert [(tmp_path / k).read_bytes() for k in keys] == [f"image {i}".encode() for i in range(16)]
    # 16 puts of 0.2 s one after another take 3.2 s; eight at a time, 0.4 s.
    assert elapsed < 1.5, elapsed
    assert 2 <= store.most <= 8, store.most


def test_a_failed_write_names_its_frame_and_the_other_frames_land(tmp_path: Path) -> None:
    keys = [f"frames/r/f{i}.png" for i in range(6)]
    store = SlowStore(LocalStore(tmp_path), delay=0.01, fail=frozenset({keys[2]}))
    with FrameWriter(store) as writer:
        for i, key in enumerate(keys):
            writer.submit(i, [key], b"png")
        with pytest.raises(
            DatapoolError, match=r"writing frame 2 to 'frames/r/f2\.png': .*the store said no$"
        ) as e:
            writer.finish()
    # Its status code stays the store's: a full store is RESOURCE_EXHAUSTED, not INTERNAL.
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert sorted(p.name for p in (tmp_path / "frames/r").iterdir()) == [f"f{i}.png" for i in (0, 1, 3, 4, 5)]


def test_several_failed_writes_are_counted_in_the_first_ones_message(tmp_path: Path) -> None:
    store = SlowStore(LocalStore(tmp_path), delay=0.0, fail=frozenset({"a.png", "c.png"}))
    with FrameWriter(store) as writer:
        writer.submit(4, ["a.png", "b.png"], b"x")
        writer.submit(7, ["c.png"], b"y")
        with pytest.raises(
            DatapoolError, match=r"writing frame 4 to 'a\.png'.*\(1 more frame writes failed\)"
        ):
            writer.finish()
    assert (tmp_path / "b.png").read_bytes() == b"x"


def test_render_frames_reports_the_frame_it_cannot_write_and_writes_the_rest(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path
) -> None:
    pool = tmp_path / "pool"
    keys = [f"frames/run1/a-{i}.png" for i in range(5)]
    # A folder where frame 3's file should go: the local store cannot replace it with a file.
    (pool / keys[3] / "occupied").mkdir(parents=True)
    request = embedder_pb2.RenderFramesRequest(
        source=media.location(),
        file=media.ref(media.videos[1]),
        frame_indices=list(range(5)),
        target=local_location(str(pool)),
        target_keys=keys,
    )
    with pytest.raises(grpc.RpcError) as caught:
        embedder_stub.RenderFrames(request, timeout=TIMEOUT)
    assert f"writing frame 3 to {keys[3]!r}" in str(caught.value.details())
    assert all((pool / k).is_file() for i, k in enumerate(keys) if i != 3)


def test_render_frames_answers_the_keys_in_request_order(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path
) -> None:
    pool = tmp_path / "pool"
    keys = [f"frames/run1/b-{i}.png" for i in (7, 0, 5, 2, 9, 1)]
    response = embedder_stub.RenderFrames(
        embedder_pb2.RenderFramesRequest(
            source=media.location(),
            file=media.ref(media.videos[0]),
            frame_indices=[7, 0, 5, 2, 9, 1],
            target=local_location(str(pool)),
            target_keys=keys,
        ),
        timeout=TIMEOUT,
    )
    assert list(response.written_keys) == keys
    assert all((pool / k).is_file() for k in keys)
