"""The run config schema: seed keys accepted, every mistake refused with its path."""

from __future__ import annotations

from typing import Any

import pytest

from datapool.config import parse_run_config, parse_run_config_json
from datapool.errors import InvalidArgument


def diversity(distance: Any = 0.1) -> list[dict[str, Any]]:
    return [
        {
            "input": {"type": "EMBEDDINGS"},
            "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": distance},
        }
    ]


def test_seed_config_is_accepted() -> None:
    config = parse_run_config(
        {"enable_training": False, "datasource": {"process_all": True}},
        {"n_samples": 100, "strategies": diversity(0.1)},
    )
    assert config.process_all
    assert config.selection.n_samples == 100
    assert config.selection.min_distance == pytest.approx(0.1)


def test_integer_distance_and_proportion_are_accepted() -> None:
    config = parse_run_config({}, {"proportion_samples": 0.5, "strategies": diversity(1)})
    assert config.selection.proportion_samples == 0.5
    assert config.selection.min_distance == 1.0
    assert not config.process_all


def test_distance_alone_is_enough() -> None:
    assert parse_run_config({}, {"strategies": diversity(0.3)}).selection.n_samples is None


@pytest.mark.parametrize(
    ("worker", "selection", "message"),
    [
        ({"enable_training": True}, {"n_samples": 1, "strategies": diversity()}, "training is not supported"),
        (
            {"enable_training": "no"},
            {"n_samples": 1, "strategies": diversity()},
            "worker_config.enable_training",
        ),
        (
            {"shutdown": True},
            {"n_samples": 1, "strategies": diversity()},
            "worker_config.shutdown: unknown key",
        ),
        (
            {"datasource": {"proces_all": True}},
            {"n_samples": 1, "strategies": diversity()},
            "datasource.proces_all",
        ),
        ({}, {"n_samples": 1.5, "strategies": diversity()}, "selection_config.n_samples"),
        ({}, {"n_samples": True, "strategies": diversity()}, "selection_config.n_samples"),
        ({}, {"n_samples": -3, "strategies": diversity()}, "selection_config.n_samples"),
        ({}, {"n_samples": 1, "proportion_samples": 0.5, "strategies": diversity()}, "only one of"),
        ({}, {"proportion_samples": 1.5, "strategies": diversity()}, "proportion_samples must be in (0, 1]"),
        ({}, {"n_samples": 1}, "selection_config.strategies: missing required field"),
        ({}, {"n_samples": 1, "strategies": []}, "selection_config.strategies"),
        ({}, {"n_samples": 1, "strategies": diversity("far")}, "strategies[0].strategy.stopping_condition"),
        ({}, {"n_samples": 1, "strategies": diversity(-0.1)}, "finite number >= 0"),
        ({}, {"strategies": diversity(0)}, "would take every frame"),
        (
            {},
            {
                "n_samples": 1,
                "strategies": [{"input": {"type": "SCORES"}, "strategy": {"type": "DIVERSITY"}}],
            },
            "selection_config.strategies[0].input.type: 'SCORES' is not supported",
        ),
        (
            {},
            {
                "n_samples": 1,
                "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "WEIGHTS"}}],
            },
            "selection_config.strategies[0].strategy.type",
        ),
        ([], {"n_samples": 1, "strategies": diversity()}, "worker_config: expected an object"),
    ],
)
def test_mistakes_are_refused_with_their_path(worker: Any, selection: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_run_config(worker, selection)
    assert message in str(err.value)


def test_invalid_json_names_the_config() -> None:
    with pytest.raises(InvalidArgument, match="selection_config: not valid JSON"):
        parse_run_config_json("{}", "{n_samples: 1}")


def test_round_trip_through_json() -> None:
    config = parse_run_config({}, {"n_samples": 3, "strategies": diversity(0.2)})
    again = parse_run_config(config.to_json()["worker_config"], config.to_json()["selection_config"])
    assert again == config
