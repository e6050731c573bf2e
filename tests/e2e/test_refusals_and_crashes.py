"""Bad configs and tokens are refused; a killed commit leaves the pool intact; concurrent runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from e2e_support import RunningStack, min_pairwise_distance, pool_embeddings, selection, wait_end

from datapool import ApiError, ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.samples import make_video
from services.common.faults import arm

pytestmark = pytest.mark.e2e


def make_dataset(
    stack: RunningStack, root: Path, name: str, n_videos: int, seed0: int = 0
) -> ApiWorkflowClient:
    videos, pool = root / "videos", root / "pool"
    videos.mkdir(parents=True)
    for i in range(n_videos):
        make_video(videos / f"v{i}.mp4", scene_seed=seed0 + i, n_frames=16)
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=name, dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
    return client


@pytest.mark.parametrize(
    ("worker", "sel", "needle"),
    [
        ({"enable_training": True}, selection(0.1), "training is not supported with the datapool"),
        ({"enable_trainin": False}, selection(0.1), "worker_config.enable_trainin: unknown key"),
        ({"datasource": {"process_all": "yes"}}, selection(0.1), "worker_config.datasource.process_all"),
        ({}, {**selection(0.1), "n_samples": "100"}, "selection_config.n_samples"),
        ({}, {"n_samples": 5}, "selection_config.strategies: missing required field"),
        (
            {},
            {
                "n_samples": 5,
                "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "RANDOM"}}],
            },
            "selection_config.strategies[0].strategy.type",
        ),
    ],
)
def test_bad_config_is_refused_before_the_run(
    stack: RunningStack, tmp_path: Path, worker: dict[str, Any], sel: dict[str, Any], needle: str
) -> None:
    client = make_dataset(stack, tmp_path, f"bad-config-{tmp_path.name}", 0)
    with pytest.raises(ApiError) as err:
        client.schedule_compute_worker_run(worker_config=worker, selection_config=sel)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.message


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_or_missing_token_is_refused(
    stack: RunningStack, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAPOOL_TOKEN", raising=False)
    client = ApiWorkflowClient(token=token, address=stack.address)
    with pytest.raises(ApiError) as err:
        client.create_dataset(dataset_name="never-created", dataset_type=DatasetType.VIDEOS)
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "token was refused" in err.value.message
    ok = ApiWorkflowClient(token=stack.token, address=stack.address)
    assert "never-created" not in [d.name for d in ok.get_datasets()]


def _pool_files(pool: Path) -> dict[str, bytes]:
    return {
        p.relative_to(pool).as_posix(): p.read_bytes()
        for p in sorted((pool / ".datapool" / "manifests").glob("*.json"))
    }


@pytest.mark.parametrize(
    ("fault", "commit_lands"),
    [
        ("selector.commit.before_data", False),
        ("selector.commit.after_data", False),
        ("selector.commit.after_manifest", True),
    ],
)
def test_run_killed_mid_commit_leaves_the_pool_intact(
    stack: RunningStack, tmp_path: Path, fault: str, commit_lands: bool
) -> None:
    client = make_dataset(stack, tmp_path, f"crash-{tmp_path.name}", 2)
    first = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.1, 10))
    assert wait_end(client, first).ended_successfully()
    before = pool_embeddings(client, tmp_path)
    manifests_before = _pool_files(tmp_path / "pool")
    assert before

    make_video(tmp_path / "videos" / "v9.mp4", scene_seed=90, n_frames=16)
    arm(stack.fault_dir, fault)
    killed = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.1, 10))
    info = wait_end(client, killed)
    assert not (stack.fault_dir / fault).exists(), "the fault point was not reached"
    if commit_lands:
        # The manifest was written before the selector died: the run's commit is in the pool,
        # and the run ends from it rather than reporting a failure that did not happen.
        assert info.ended_successfully(), info.message
    else:
        assert not info.ended_successfully()
        assert "commit failed" in info.message

    # The supervisor restarts the selector; wait for it to answer again.
    deadline = time.monotonic() + 60
    while True:
        try:
            after = pool_embeddings(client, tmp_path)
            break
        except ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    manifests_after = _pool_files(tmp_path / "pool")
    if commit_lands:
        assert set(before) < set(after)
        assert len(manifests_after) == len(manifests_before) + 1
    else:
        assert after.keys() == before.keys()
        assert manifests_after == manifests_before
    for name, vec in before.items():
        np.testing.assert_array_equal(after[name], vec)

    again = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.1, 10))
    assert wait_end(client, again).ended_successfully()
    final = pool_embeddings(client, tmp_path)
    assert set(after) <= set(final)
    assert min_pairwise_distance(np.stack(list(final.values()))) >= 0.1 - 1e-5


def test_two_runs_at_once_neither_lose_nor_duplicate_frames(stack: RunningStack, tmp_path: Path) -> None:
    client = make_dataset(stack, tmp_path, f"race-{tmp_path.name}", 3, seed0=20)
    runs = [
        client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.15, 30))
        for _ in range(2)
    ]
    infos = [wait_end(client, r) for r in runs]
    assert all(i.ended_successfully() for i in infos), [i.message for i in infos]
    pool = pool_embeddings(client, tmp_path)  # asserts no frame is there twice
    vecs = np.stack(list(pool.values()))
    assert min_pairwise_distance(vecs) >= 0.15 - 1e-5
    reports = [client.download_compute_worker_run_report_json(r) for r in runs]
    assert sum(r["frames"]["selected"] for r in reports) == len(pool)
    pngs = {p.name for p in (tmp_path / "pool" / "frames").rglob("*.png")}
    assert set(pool) <= pngs


def test_health_and_reflection_stay_open_without_a_token(stack: RunningStack) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(stack.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert "datapool.v1.Scheduler" in services
        assert "grpc.health.v1.Health" in services
