"""EmbedFile, RenderFrames and GetModelInfo over a real channel to an in-process server."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from embedder_media import N_FRAMES, SIZE, Media
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from datapool.channels import make_channel
from datapool.samples import CorruptKind, make_video
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.server import make_server

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def channel(backend: TorchCpuBackend) -> Iterator[grpc.Channel]:
    server = make_server(backend, "127.0.0.1:0", max_workers=4)
    server.start()
    with make_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch
    server.stop(0)


@pytest.fixture
def stub(channel: grpc.Channel) -> embedder_pb2_grpc.EmbedderStub:
    return embedder_pb2_grpc.EmbedderStub(channel)


def embed(
    stub: embedder_pb2_grpc.EmbedderStub,
    media: Media,
    path: Path,
    dtype: common_pb2.VectorDType.ValueType = common_pb2.VECTOR_DTYPE_UNSPECIFIED,
    batch_size: int = 0,
    ref: common_pb2.FileRef | None = None,
) -> list[embedder_pb2.EmbedFileResponse]:
    request = embedder_pb2.EmbedFileRequest(
        source=media.location(), file=ref or media.ref(path), dtype=dtype, batch_size=batch_size
    )
    return list(stub.EmbedFile(request, timeout=TIMEOUT))


def unpack(batch: common_pb2.VectorBatch) -> np.ndarray:
    dtype = {common_pb2.FLOAT32: "<f4", common_pb2.FLOAT16: "<f2"}[batch.dtype]
    return np.frombuffer(batch.vectors, dtype=dtype).reshape(len(batch.frame_indices), batch.dim)


def test_stream_is_info_batches_done(stub: embedder_pb2_grpc.EmbedderStub, media: Media) -> None:
    responses = embed(stub, media, media.videos[0], batch_size=5)
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds == ["info", "batch", "batch", "batch", "done"]
    info = responses[0].info
    assert (info.kind, info.width, info.height, info.codec, info.frame_count_hint) == (
        "video",
        *SIZE,
        "h264",
        N_FRAMES,
    )
    batches = [r.batch for r in responses[1:-1]]
    assert [i for b in batches for i in b.frame_indices] == list(range(N_FRAMES))
    assert all(b.dim == 1280 and b.dtype == common_pb2.FLOAT32 for b in batches)
    vectors = np.concatenate([unpack(b) for b in batches])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    done = responses[-1].done
    assert done.frame_count == N_FRAMES and done.model.startswith("efficientnet-lite0/")


def test_float16_and_default_batch(stub: embedder_pb2_grpc.EmbedderStub, media: Media) -> None:
    as32 = embed(stub, media, media.videos[1], dtype=common_pb2.FLOAT32)
    as16 = embed(stub, media, media.videos[1], dtype=common_pb2.FLOAT16)
    # The default batch (64) holds the whole 12-frame clip.
    assert [r.WhichOneof("event") for r in as16] == ["info", "batch", "done"]
    assert as16[1].batch.dtype == common_pb2.FLOAT16
    assert len(as16[1].batch.vectors) == N_FRAMES * 1280 * 2
    v16, v32 = unpack(as16[1].batch).astype(np.float32), unpack(as32[1].batch)
    np.testing.assert_allclose(v16, v32, atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(v16, axis=1), 1.0, atol=1e-2)


@pytest.mark.parametrize("kind", ["random", "truncated", "empty", "no_video"])
def test_corrupt_file_is_skipped_with_a_reason(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, kind: CorruptKind
) -> None:
    responses = embed(stub, media, media.corrupt[kind])
    assert [r.WhichOneof("event") for r in responses] == ["skipped"]
    assert responses[0].skipped.reason


def test_changed_or_deleted_since_listing(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path
) -> None:
    root = tmp_path / "src"
    path = make_video(root / "clip.mp4", scene_seed=21, n_frames=4)
    location = local_location(str(root))
    size = path.stat().st_size
    stale = common_pb2.FileRef(path="clip.mp4", size=size, etag="0-0")
    request = embedder_pb2.EmbedFileRequest(source=location, file=stale)
    [changed] = list(stub.EmbedFile(request, timeout=TIMEOUT))
    assert changed.skipped.reason == "changed since listing"
    path.unlink()
    [deleted] = list(stub.EmbedFile(request, timeout=TIMEOUT))
    assert deleted.skipped.reason == "deleted since listing"


def test_bad_requests_name_the_field(stub: embedder_pb2_grpc.EmbedderStub, media: Media) -> None:
    cases = [
        (
            embedder_pb2.EmbedFileRequest(
                source=media.location(), file=media.ref(media.videos[0]), batch_size=-1
            ),
            "batch_size",
        ),
        (embedder_pb2.EmbedFileRequest(source=media.location()), "file.path"),
        (embedder_pb2.EmbedFileRequest(file=media.ref(media.videos[0])), "source"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.EmbedFile(request, timeout=TIMEOUT))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in str(caught.value.details())


def test_render_frames_writes_pngs(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path
) -> None:
    pool = tmp_path / "pool"
    keys = ["frames/run1/a-000003.png", "frames/run1/a-000000.png", "frames/run1/a-000003-copy.png"]
    response = stub.RenderFrames(
        embedder_pb2.RenderFramesRequest(
            source=media.location(),
            file=media.ref(media.videos[2]),
            frame_indices=[3, 0, 3],
            target=local_location(str(pool)),
            target_keys=keys,
        ),
        timeout=TIMEOUT,
    )
    assert list(response.written_keys) == keys
    for key in keys:
        image = Image.open(io.BytesIO((pool / key).read_bytes()))
        assert image.format == "PNG" and image.size == SIZE
    assert (pool / keys[0]).read_bytes() == (pool / keys[2]).read_bytes()


def test_render_frames_errors(stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path) -> None:
    target = local_location(str(tmp_path / "pool"))
    ref = media.ref(media.videos[0])
    mismatch = embedder_pb2.RenderFramesRequest(
        source=media.location(), file=ref, frame_indices=[1, 2], target=target, target_keys=["a.png"]
    )
    beyond = embedder_pb2.RenderFramesRequest(
        source=media.location(),
        file=ref,
        frame_indices=[N_FRAMES],
        target=target,
        target_keys=["frames/run1/b.png"],
    )
    broken = embedder_pb2.RenderFramesRequest(
        source=media.location(),
        file=media.ref(media.corrupt["random"]),
        frame_indices=[0],
        target=target,
        target_keys=["frames/run1/c.png"],
    )
    expected = [
        (mismatch, grpc.StatusCode.INVALID_ARGUMENT, "target_keys"),
        (beyond, grpc.StatusCode.INVALID_ARGUMENT, f"frame {N_FRAMES}"),
        (broken, grpc.StatusCode.FAILED_PRECONDITION, "corrupt"),
    ]
    for request, code, text in expected:
        with pytest.raises(grpc.RpcError) as caught:
            stub.RenderFrames(request, timeout=TIMEOUT)
        assert caught.value.code() == code
        assert text in str(caught.value.details())


def test_model_info_and_health(
    stub: embedder_pb2_grpc.EmbedderStub, channel: grpc.Channel, backend: TorchCpuBackend
) -> None:
    info = stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=TIMEOUT)
    assert (info.model, info.dim, info.backend) == (backend.model_id, 1280, "torch-cpu")
    assert info.backend_reason
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", "datapool.v1.Embedder"]:
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_cancelled_stream_stops_decoding(stub: embedder_pb2_grpc.EmbedderStub, tmp_path: Path) -> None:
    root = tmp_path / "src"
    make_video(root / "cancelled.mp4", scene_seed=22, n_frames=300)
    request = embedder_pb2.EmbedFileRequest(
        source=local_location(str(root)), file=common_pb2.FileRef(path="cancelled.mp4"), batch_size=2
    )
    call = stub.EmbedFile(request, timeout=TIMEOUT)
    assert next(call).WhichOneof("event") == "info"
    assert next(call).WhichOneof("event") == "batch"
    call.cancel()
    deadline = time.monotonic() + 5
    while any(t.name == "decode-cancelled.mp4" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "decoding went on after the client cancelled"
        time.sleep(0.05)
