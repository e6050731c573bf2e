"""A pool on a full disk is reported as a full disk, at set_*_config and at run start: never
as a permission to fix or a check to bypass."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from small_disk import fill, tmpfs

from datapool.config import parse_run_config
from datapool.errors import ResourceExhausted
from datapool.storage import local_location
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import verify_datasource
from services.scheduler.pipeline import RunFailed, RunSpec
from services.scheduler.run.verify import verify_access

SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def test_setting_a_pool_on_a_full_disk_says_disk_full(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        fill(disk)
        with pytest.raises(ResourceExhausted) as caught:
            verify_datasource(local_location(str(disk / "pool")), scheduler_pb2.LIGHTLY)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"disk full writing {disk / 'pool'}/.datapool/access-check-" in str(caught.value)
    assert "permission" not in str(caught.value).lower()


def test_a_run_on_a_full_pool_disk_fails_saying_so(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with tmpfs(tmp_path / "disk") as disk:
        fill(disk)
        spec = RunSpec(
            run_id="r",
            dataset_type=scheduler_pb2.VIDEOS,
            input=local_location(str(tmp_path / "in")),
            pool=local_location(str(disk / "pool")),
            config=parse_run_config({}, SELECTION),
        )
        with pytest.raises(RunFailed) as caught:
            verify_access(spec)
    message = str(caught.value)
    assert message.startswith("the LIGHTLY datasource has no space left: disk full writing")
    assert "Fix the permissions" not in message and "bypass_verify" not in message
