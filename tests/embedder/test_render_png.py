from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from services.embedder.frame_encoding import PNG, encode_png


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 13, 3), (64, 96, 3)])
def test_pngs_decode_to_the_exact_pixels_in_pillow(shape: tuple[int, int, int]) -> None:
    # Random bytes exercise the "up" filter's wrap-around (a byte minus a larger one above it).
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    image = Image.open(io.BytesIO(PNG.encode(frame)))
    image.load()  # checks every chunk's CRC and the deflate stream
    assert image.format == "PNG" and image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), frame)


def test_pngs_decode_to_the_exact_pixels_in_ffmpeg() -> None:
    frame = np.random.default_rng(2).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    codec = av.CodecContext.create("png", "r")
    [decoded] = codec.decode(av.Packet(encode_png(frame)))
    np.testing.assert_array_equal(decoded.to_ndarray(format="rgb24"), frame)


def test_a_frame_that_is_a_view_encodes_as_its_pixels() -> None:
    # Upright frames of rotated videos are views with other strides.
    frame = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    turned = np.rot90(frame)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(turned)))), turned)


def test_a_frame_that_is_not_rgb_is_refused() -> None:
    with pytest.raises(ValueError, match="RGB"):
        encode_png(np.zeros((4, 4, 4), dtype=np.uint8))
