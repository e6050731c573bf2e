"""Small H.264 clips with chosen keyframes, for the seeking render's tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from datapool.samples import Scene

SIZE = (96, 64)


def make_gop_clip(
    path: Path,
    n_frames: int,
    keyframes: set[int],
    open_gop: bool = False,
    container_bframes: int = 3,
    b_pyramid: str = "normal",
) -> Path:
    """`n_frames` of a moving scene with IDR keyframes exactly at `keyframes` (frame 0 is one
    always); with `open_gop`, the later ones are open-GOP I-frames whose leading B-frames
    refer to the GOP before. `b_pyramid` "none": no B-frame is a reference (x264's default,
    "normal", makes the middle one of a run of B-frames one). The container follows the
    suffix (.mp4: NAL units behind lengths, .ts: start codes)."""
    params = [
        "threads=1:lookahead-threads=1:sliced-threads=0:no-asm=1",
        f"keyint={n_frames + 1}:min-keyint=1:scenecut=0:bframes={container_bframes}:b-pyramid={b_pyramid}",
    ]
    if open_gop:
        params.append("open-gop=1")
    scene = Scene(21, SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"preset": "veryfast", "crf": "20", "x264-params": ":".join(params)}
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(scene.frame(t), format="rgb24")
            frame.pts = t
            if t in keyframes:
                frame.pict_type = av.video.frame.PictureType.I
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
