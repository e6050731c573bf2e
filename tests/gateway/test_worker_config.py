"""The Lightly client's config post as datapool's configs: keys renamed, unsupported ones refused."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.errors import GatewayError
from services.gateway.worker_config import PendingConfigs, from_lightly

# What lightly 1.5.26's schedule_compute_worker_run posts for the README's third run.
LIGHTLY_BODY: dict[str, Any] = {
    "version": "V4",
    "creator": "USER_PIP",
    "config": {
        "workerType": "FULL",
        "docker": {"datasource": {"processAll": True}, "enableTraining": False, "useDatapool": True},
        "selection": {
            "nSamples": 100,
            "strategies": [
                {
                    "input": {"type": "EMBEDDINGS"},
                    "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": 0.2},
                }
            ],
            "autoTasks": [],
        },
    },
}


def test_the_lightly_body_becomes_datapools_snake_case_configs() -> None:
    config = from_lightly(LIGHTLY_BODY)
    assert config.worker_config == {"datasource": {"process_all": True}, "enable_training": False}
    assert config.selection_config == {
        "n_samples": 100,
        "strategies": [
            {
                "input": {"type": "EMBEDDINGS"},
                "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": 0.2},
            }
        ],
    }


@pytest.mark.parametrize(
    ("part", "value", "named"),
    [
        ("docker", {"pretagging": True}, "worker_config.pretagging"),
        ("docker", {"datasource": {"retentionPolicy": {}}}, "worker_config.datasource.retention_policy"),
        ("selection", {"autoTasks": [{"type": "TILING"}]}, "selection_config.auto_tasks"),
        ("lightly", {"loader": {"batchSize": 16}}, "lightly_config"),
    ],
)
def test_a_key_datapool_does_not_have_is_refused_by_name(
    part: str, value: dict[str, Any], named: str
) -> None:
    body = {"version": "V4", "config": {"workerType": "FULL", part: value}}
    with pytest.raises(GatewayError) as err:
        from_lightly(body)
    assert err.value.status == 400
    assert err.value.message == f"not supported by datapool: {named}" or named in err.value.message


def test_the_image_format_keys_pass_on_as_the_lightly_worker_names_them() -> None:
    body = {"version": "V4", "config": {"docker": {"outputImageFormat": "jpg", "jpgQuality": 80}}}
    assert from_lightly(body).worker_config == {"output_image_format": "jpg", "jpg_quality": 80}


def test_use_datapool_must_be_a_boolean() -> None:
    body = {"version": "V4", "config": {"docker": {"useDatapool": "yes"}}}
    with pytest.raises(GatewayError, match=r"worker_config.use_datapool: expected true or false"):
        from_lightly(body)


def test_a_config_id_from_another_gateway_is_not_found_and_old_configs_are_dropped() -> None:
    configs = PendingConfigs(limit=2)
    ids = [configs.add(from_lightly(LIGHTLY_BODY)) for _ in range(3)]
    assert all(len(i) == 24 for i in ids)
    configs.get(ids[2])
    with pytest.raises(GatewayError) as err:
        configs.get(ids[0])
    assert err.value.status == 404 and ids[0] in err.value.message
