"""Opening a video for decoding on an NVIDIA GPU (NVDEC), when there is one.

We use FFmpeg's own H.264/HEVC decoders with the CUDA hwaccel rather than the
separate `h264_cuvid`/`hevc_cuvid` decoders: the hwaccel only moves the picture
reconstruction to the GPU, while FFmpeg's decoder still parses the stream and
decides which frames come out, in what order. Which frames a file has, and their
numbers, come from the same FFmpeg code whether or not a GPU decoded it (cuvid
brings NVIDIA's own parser, which may output a different set of frames for a
damaged stream). The pictures are the same on an intact stream, up to a rounding
step in the conversion to RGB; on a damaged one they may differ, see HW_CODECS.
Frames are copied back to host memory, so the rest of the pipeline is unchanged.

Every failure here means "decode in software": the reason is logged once. A GPU
decoder that fails part way is handled like any decoder error in FrameDecoder:
the file is decoded again from its first frame in software, and only the frames
not yet handed out are yielded, under the same numbers.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import av
import av.error
from av.codec.hwaccel import HWAccel

log = logging.getLogger(__name__)

# H.264 and HEVC decoding is bit-exact by specification, so on an intact stream the GPU
# gives the pictures software gives (codecs like MPEG-4 part 2 are not, hence left to
# software). Damage inside a slice is another matter: FFmpeg hands slice data to NVDEC
# without parsing it, so it sees no error there, and NVDEC conceals the damage its own
# way, while software detects it and decodes the file again concealing in one thread. A
# damaged frame may therefore look different on a GPU replica than on a CPU one.
HW_CODECS = frozenset({"h264", "hevc"})
_logged: set[str] = set()
# The CUDA device NVDEC decodes on: the embedder's --device, so that decoding shares the
# model's GPU (and torch's primary context on it) instead of loading device 0.
_device = 0


def use_device(index: int) -> None:
    """Decode on CUDA device `index` from now on (the embedder calls it with its --device)."""
    global _device
    _device = index


@functools.cache
def cuda_present() -> bool:
    """Whether this process sees a CUDA GPU (via torch, which the embedder loads anyway)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def log_once(reason: str) -> None:
    if reason not in _logged:
        _logged.add(reason)
        log.warning("%s; decoding in software", reason)


def open_on_gpu(path: Path, codec: str) -> Any | None:
    """The container opened with the CUDA hwaccel on its video stream, or None (logged once)
    when the codec is not one we decode on the GPU or the GPU decoder cannot be set up."""
    if codec not in HW_CODECS:
        return None
    # allow_software_fallback: a stream the GPU cannot take (H.264 High 10, 4:4:4) is
    # decoded in software by the same FFmpeg decoder, settled before its first frame.
    # primary_ctx shares torch's CUDA context instead of creating one per file.
    device = _device
    hwaccel = HWAccel("cuda", device=str(device), allow_software_fallback=True, options={"primary_ctx": "1"})
    try:
        container = av.open(str(path), mode="r", hwaccel=hwaccel)
    except (av.error.FFmpegError, NotImplementedError, ValueError) as e:
        log_once(f"GPU video decoding (CUDA hwaccel, device {device}) is unavailable: {e}")
        return None
    if not container.streams.video or not container.streams.video[0].codec_context.is_hwaccel:
        container.close()
        log_once(f"GPU video decoding (CUDA hwaccel, device {device}) does not support {codec}")
        return None
    return container
