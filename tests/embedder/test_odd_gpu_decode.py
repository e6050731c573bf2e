"""Decoding on the GPU (NVDEC) gives the frames software gives, and falls back cleanly without one."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from av.codec.hwaccel import HWAccel
from numpy.typing import NDArray
from odd_media import OddVideo

from datapool.samples import make_video
from services.embedder import hwdecode
from services.embedder.decode import FrameDecoder, MediaInfo
from services.embedder.hwdecode import cuda_present

# H.264 and HEVC, 8 and 10 bit (the GPU takes H.264 High 10 in software, by itself),
# a rotated one, a damaged one, and 720p.
GPU_CASES = [
    OddVideo("h264.mp4", size=(320, 240), n_frames=30),
    OddVideo("hevc.mkv", size=(320, 240), n_frames=30, codec="libx265"),
    OddVideo("hevc-10bit.mkv", size=(320, 240), n_frames=12, codec="libx265", pix_fmt="yuv420p10le"),
    OddVideo("h264-10bit.mp4", size=(320, 240), n_frames=12, pix_fmt="yuv420p10le"),
    OddVideo("rot90.mp4", size=(320, 240), rotation=(90, False, False)),
    OddVideo("damaged.mp4", size=(320, 240), n_frames=40, damage_at=(0.5,)),
]


def decode(
    path: Path, gpu: bool, size: tuple[int, int] | None = None
) -> tuple[MediaInfo, list[NDArray[np.uint8]]]:
    with FrameDecoder(path, size=size, gpu=gpu) as decoder:
        pairs = list(decoder.frames())
        info = decoder.info
    assert [i for i, _ in pairs] == list(range(len(pairs)))
    return info, [f for _, f in pairs]


@pytest.mark.skipif(
    cuda_present(), reason="this machine has a GPU: test_gpu_decode_matches_software covers it"
)
def test_without_a_usable_gpu_decoder_software_decodes_the_same_frames(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = OddVideo("h264.mp4", n_frames=10).write(tmp_path)
    monkeypatch.setattr(hwdecode, "_logged", set())  # as in a fresh process
    # The embedder's --device reaches PyAV's hwaccel (restored after the test).
    monkeypatch.setattr(hwdecode, "_device", hwdecode._device)
    hwdecode.use_device(1)
    made: list[Any] = []

    def hwaccel(*args: Any, **kwargs: Any) -> Any:
        made.append(HWAccel(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(hwdecode, "HWAccel", hwaccel)
    caplog.set_level(logging.WARNING, logger="services.embedder.hwdecode")
    info, frames = decode(path, gpu=True)
    again_info, again = decode(path, gpu=True)
    _, software = decode(path, gpu=False)
    assert info.decoder == again_info.decoder == "h264"
    assert [accel.device_id for accel in made] == [1, 1]
    assert len(frames) == len(software) == 10
    assert all(np.array_equal(a, b) for a, b in zip(frames, software, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(again, software, strict=True))
    reasons = [r.getMessage() for r in caplog.records]
    # Said once per process, with FFmpeg's reason, not once per file.
    assert len(reasons) == 1 and "GPU video decoding (CUDA hwaccel, device 1) is unavailable" in reasons[0]
    assert "decoding in software" in reasons[0]


def test_codecs_left_to_software_are_not_tried_on_the_gpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_video(tmp_path / "clip.avi", scene_seed=2, n_frames=6)
    caplog.set_level(logging.WARNING, logger="services.embedder.hwdecode")
    info, frames = decode(path, gpu=True)
    assert info.decoder == "mpeg4" and len(frames) == 6
    assert caplog.records == []


@pytest.mark.gpu
@pytest.mark.parametrize("video", GPU_CASES, ids=lambda v: v.name)
def test_gpu_decode_matches_software(tmp_path: Path, video: OddVideo) -> None:
    path = video.write(tmp_path)
    for size in (None, (224, 224)):
        gpu_info, on_gpu = decode(path, gpu=True, size=size)
        software_info, software = decode(path, gpu=False, size=size)
        if video.codec == "libx265" or video.pix_fmt == "yuv420p":
            assert gpu_info.decoder.endswith("(cuda)"), gpu_info.decoder
        # Read from the container that decodes, not the one closed when the GPU took over.
        assert replace(gpu_info, decoder="") == replace(software_info, decoder=""), gpu_info
        assert len(on_gpu) == len(software)
        # H.264/HEVC are bit-exact; the GPU hands out NV12/P010 instead of planar YUV, so the
        # RGB conversion may round differently by a step.
        clean = range(len(software) // 4) if video.damage_at else range(len(software))
        for i in clean:
            diff = np.abs(on_gpu[i].astype(np.int16) - software[i].astype(np.int16))
            assert diff.mean() < 0.5 and diff.max() <= 8, (i, diff.mean(), diff.max())
