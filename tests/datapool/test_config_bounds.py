"""Numbers outside the documented bounds, huge integers, deep nesting and oversized configs
are refused before a run exists, naming the key, in a message of bounded size."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datapool.config import MAX_CONFIG_BYTES, parse_run_config_json
from datapool.errors import InvalidArgument

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]


def selection(**keys: Any) -> str:
    return json.dumps({"strategies": DIVERSITY, **keys})


def refused(worker: str, selection_json: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_run_config_json(worker, selection_json)
    message = str(caught.value)
    assert len(message) < 1000, message
    return message


@pytest.mark.parametrize(
    ("worker", "selection_json", "needle"),
    [
        (
            "{}",
            selection(n_samples=2**70),
            "selection_config.n_samples: input should be less than or equal to",
        ),
        (
            "{}",
            '{"n_samples": ' + "9" * 5000 + "}",
            "selection_config.n_samples: a 5000-digit integer is out of range",
        ),
        (
            '{"frame_sampling": {"every_nth": -' + "1" * 4400 + "}}",
            selection(n_samples=1),
            "worker_config.frame_sampling.every_nth: a 4400-digit integer is out of range",
        ),
        (
            '{"frame_sampling": {"target_fps": 1e-300}}',
            selection(n_samples=1),
            "worker_config.frame_sampling.target_fps: input should be greater than or equal to 0.001",
        ),
        (
            '{"frame_sampling": {"target_fps": 1e300}}',
            selection(n_samples=1),
            "worker_config.frame_sampling.target_fps: input should be less than or equal to 1000",
        ),
        (
            "{}",
            json.dumps(
                {
                    "strategies": [
                        {
                            **DIVERSITY[0],
                            "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": 3},
                        }
                    ]
                }
            ),
            "stopping_condition_minimum_distance must be a finite number >= 0 and <= 2",
        ),
        ("{}", "[" * 100_000 + "]" * 100_000, "selection_config: "),
        ("{}", '{"a": ' * 5_000 + "1" + "}" * 5_000, "selection_config: JSON nested too deeply"),
        (
            '{"model_backend": "' + "x" * 50_000 + '"}',
            selection(n_samples=1),
            "worker_config.model_backend: unknown",
        ),
    ],
    ids=[
        "2**70",
        "5000-digit",
        "4400-digit-negative",
        "fps-1e-300",
        "fps-1e300",
        "distance-3",
        "deep-100000",
        "deep-5000",
        "long-string",
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_its_key(
    worker: str, selection_json: str, needle: str
) -> None:
    assert needle in refused(worker, selection_json)


def test_an_oversized_config_is_refused_with_its_size() -> None:
    big = json.dumps({"n_samples": 1, "strategies": DIVERSITY, "padding": "x" * MAX_CONFIG_BYTES})
    message = refused("{}", big)
    assert (
        f"selection_config: {len(big)} bytes of JSON, over the limit of {MAX_CONFIG_BYTES} bytes" in message
    )


def test_values_at_the_bounds_are_accepted() -> None:
    config = parse_run_config_json(
        '{"frame_sampling": {"target_fps": 0.001}}', selection(n_samples=1_000_000_000)
    )
    assert config.selection.n_samples == 1_000_000_000
    assert config.worker.frame_sampling.target_fps == 0.001
    assert parse_run_config_json('{"frame_sampling": {"target_fps": 1000}}', selection(n_samples=1))
