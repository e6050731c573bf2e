"""The embedder writes frames only as frames/<run>/<name>.png, reads and writes local
datasources only inside its --allowed-root folders, and reports a full or read-only pool
disk as RESOURCE_EXHAUSTED / PERMISSION_DENIED naming the path (was UNKNOWN)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from embedder_media import Media
from small_disk import fill, tmpfs

from datapool.channels import make_channel
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc
from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.locations_guard import AllowedRoots
from services.embedder.server import make_server

TIMEOUT = 60.0


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pools")


@pytest.fixture(scope="module")
def stub(backend: TorchCpuBackend, media: Media, pools: Path) -> Iterator[embedder_pb2_grpc.EmbedderStub]:
    """An embedder allowed only the media folder (input) and `pools` (pools)."""
    server = make_server(backend, "127.0.0.1:0", max_workers=4, allowed=AllowedRoots.of([media.root, pools]))
    server.start()
    with make_channel(f"127.0.0.1:{server.port}") as channel:
        yield embedder_pb2_grpc.EmbedderStub(channel)
    server.stop(0)


def render(
    stub: embedder_pb2_grpc.EmbedderStub,
    source: common_pb2.StoreLocation,
    ref: common_pb2.FileRef,
    target: Path,
    key: str = "frames/run1/a-0.png",
) -> grpc.RpcError | None:
    request = embedder_pb2.RenderFramesRequest(
        source=source, file=ref, frame_indices=[0], target=local_location(str(target)), target_keys=[key]
    )
    try:
        stub.RenderFrames(request, timeout=TIMEOUT)
    except grpc.RpcError as e:
        return e
    return None


def refusal(error: grpc.RpcError | None) -> tuple[grpc.StatusCode, str]:
    assert isinstance(error, grpc.Call), "the call was not refused"
    return error.code(), error.details() or ""


@pytest.mark.parametrize(
    "key",
    [
        "../../outside.png",
        "frames/run1/../../../outside.png",
        "frames/run1/sub//a.png",
        "frames/run1/./a.png",
        "frames/a.png",
        "frames/run1/a.txt",
        "a.png",
        "/etc/cron.d/a.png",
    ],
)
def test_a_frame_key_that_is_not_a_flat_frame_name_is_refused(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, pools: Path, key: str
) -> None:
    target = pools / "keys"
    code, details = refusal(render(stub, media.location(), media.ref(media.videos[0]), target, key))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"target_keys: {key!r} is not a frame key" in details
    assert not target.exists()


def test_frames_render_inside_the_allowed_roots(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, pools: Path
) -> None:
    assert render(stub, media.location(), media.ref(media.videos[0]), pools / "ok") is None
    assert (pools / "ok" / "frames" / "run1" / "a-0.png").is_file()
    # A frame name keeps the folders of its video.
    assert (
        render(stub, media.location(), media.ref(media.videos[0]), pools / "ok", "frames/run1/sub/b-0.png")
        is None
    )
    assert (pools / "ok" / "frames" / "run1" / "sub" / "b-0.png").is_file()


def test_a_pool_outside_the_allowed_roots_is_refused_naming_it(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path, pools: Path
) -> None:
    code, details = refusal(render(stub, media.location(), media.ref(media.videos[0]), tmp_path / "pool"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert f"target.local.root: {tmp_path / 'pool'} is outside the folders this embedder may use" in details
    # Through '..' from an allowed root: resolved first.
    sneaky = f"{pools}/../{tmp_path.name}/pool"
    code, details = refusal(render(stub, media.location(), media.ref(media.videos[0]), Path(sneaky)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert not (tmp_path / "pool").exists()


def test_a_video_outside_the_allowed_roots_is_refused_for_render_and_embed(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path, pools: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(media.videos[0], elsewhere / "v.mp4")
    ref = common_pb2.FileRef(path="v.mp4")
    code, details = refusal(render(stub, local_location(str(elsewhere)), ref, pools / "p"))
    assert (code, "source.local.root") == (grpc.StatusCode.PERMISSION_DENIED, details.split(":")[0])
    with pytest.raises(grpc.RpcError) as caught:
        list(
            stub.EmbedFile(
                embedder_pb2.EmbedFileRequest(source=local_location(str(elsewhere)), file=ref),
                timeout=TIMEOUT,
            )
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_symlink_in_the_input_to_a_video_outside_is_refused(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path, pools: Path
) -> None:
    shutil.copy(media.videos[0], tmp_path / "secret.mp4")
    link = media.root / "link-out.mp4"
    os.symlink(tmp_path / "secret.mp4", link)
    try:
        code, details = refusal(render(stub, media.location(), media.ref(link), pools / "p"))
    finally:
        link.unlink()
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert f"file.path: {tmp_path / 'secret.mp4'} is outside" in details


def test_rendering_onto_a_full_disk_is_resource_exhausted_naming_the_file(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        (disk / "pool").mkdir()
        fill(disk)
        code, details = refusal(
            render(embedder_stub, media.location(), media.ref(media.videos[0]), disk / "pool")
        )
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"disk full writing {disk / 'pool' / 'frames/run1/a-0.png'}" in details
        assert "permission" not in details.lower()
        assert list((disk / "pool").rglob("*.png*")) == []


def test_rendering_onto_a_read_only_disk_is_permission_denied(
    embedder_stub: embedder_pb2_grpc.EmbedderStub, media: Media, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", read_only=True) as disk:
        code, details = refusal(render(embedder_stub, media.location(), media.ref(media.videos[0]), disk))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert f"missing permission to write {disk / 'frames'}" in details


def test_a_jpg_render_writes_jpegs_under_jpg_keys_only(
    stub: embedder_pb2_grpc.EmbedderStub, media: Media, pools: Path
) -> None:
    def jpg_request(key: str, image_format: str = "jpg") -> embedder_pb2.RenderFramesRequest:
        return embedder_pb2.RenderFramesRequest(
            source=media.location(),
            file=media.ref(media.videos[0]),
            frame_indices=[0],
            target=local_location(str(pools / "jpg")),
            target_keys=[key],
            image_format=image_format,
            jpg_quality=80,
        )

    stub.RenderFrames(jpg_request("frames/run1/a-0.jpg"), timeout=TIMEOUT)
    assert (pools / "jpg" / "frames" / "run1" / "a-0.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    for key, image_format, named in [
        ("frames/run1/b-0.png", "jpg", "'frames/<run id>/<frame name>.jpg'"),
        ("frames/run1/b-0.gif", "gif", "image_format: 'gif' is not one of png, jpg"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.RenderFrames(jpg_request(key, image_format), timeout=TIMEOUT)
        assert refusal(err.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert named in refusal(err.value)[1]
    assert sorted(p.name for p in (pools / "jpg" / "frames" / "run1").iterdir()) == ["a-0.jpg"]
