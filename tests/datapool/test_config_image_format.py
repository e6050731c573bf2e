"""worker_config.output_image_format and jpg_quality: the Lightly Worker's keys, checked by key."""

from __future__ import annotations

from typing import Any

import pytest

from datapool.config import parse_run_config
from datapool.errors import InvalidArgument

SELECTION = {
    "n_samples": 3,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def test_frames_are_png_unless_asked_otherwise() -> None:
    worker = parse_run_config({}, SELECTION).worker
    assert (worker.output_image_format, worker.jpg_quality) == ("png", 90)


def test_jpg_with_a_quality_is_accepted_and_kept_in_the_config() -> None:
    config = parse_run_config({"output_image_format": "jpg", "jpg_quality": 75}, SELECTION)
    assert config.to_json()["worker_config"]["output_image_format"] == "jpg"
    assert config.worker.jpg_quality == 75


@pytest.mark.parametrize(
    ("worker", "message"),
    [
        ({"output_image_format": "gif"}, "worker_config.output_image_format: 'gif' is not supported"),
        ({"output_image_format": "JPG"}, "worker_config.output_image_format: 'JPG' is not supported"),
        ({"jpg_quality": 0}, "worker_config.jpg_quality: input should be greater than or equal to 1"),
        ({"jpg_quality": 101}, "worker_config.jpg_quality: input should be less than or equal to 100"),
        ({"jpg_quality": "90"}, "worker_config.jpg_quality: input should be a valid integer"),
        ({"jpg_quality": True}, "worker_config.jpg_quality: input should be a valid integer"),
        ({"jpg_quality": 90.5}, "worker_config.jpg_quality: input should be a valid integer"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(worker: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_run_config(worker, SELECTION)
    assert message in str(err.value)
