from __future__ import annotations

import io

import numpy as np
import pytest
from embedder_media import N_FRAMES, SIZE, Media
from PIL import Image

from datapool.errors import InvalidArgument
from services.embedder.decode import FrameDecoder
from services.embedder.render import render_frames


def test_pngs_round_trip_to_the_decoded_frames(media: Media) -> None:
    with FrameDecoder(media.videos[1]) as decoder:
        full = dict(decoder.frames())
    rendered = list(render_frames(media.videos[1], [9, 0, 4, 9]))
    assert [i for i, _ in rendered] == [0, 4, 9]
    for index, png in rendered:
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.size == SIZE
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), full[index])


def test_an_image_renders_as_frame_zero(media: Media) -> None:
    [(index, png)] = list(render_frames(media.jpg, [0]))
    assert index == 0 and Image.open(io.BytesIO(png)).size == SIZE


def test_index_beyond_the_end_is_named(media: Media) -> None:
    with pytest.raises(InvalidArgument, match=f"frame {N_FRAMES + 5} is beyond the end.*{N_FRAMES} frames"):
        list(render_frames(media.videos[0], [1, N_FRAMES + 5]))


def test_negative_index(media: Media) -> None:
    with pytest.raises(InvalidArgument, match="-1"):
        list(render_frames(media.videos[0], [-1]))


def test_nothing_requested_decodes_nothing(media: Media) -> None:
    assert list(render_frames(media.corrupt["random"], [])) == []
