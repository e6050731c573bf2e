"""Two scheduler processes on one Postgres, beside the shared stack's selector and embedder: the
one running a run is killed mid-run, the other takes the run over and finishes it, the pool
holds each frame once, and the run is watched through the surviving replica."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import RunningStack, pool_embeddings, processed_paths, selection, wait_end
from postgres_server import PostgresServer

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.channels import wait_healthy
from datapool.samples import make_video
from datapool.stack import free_port
from services.common.faults import arm
from services.scheduler.db import MetadataDB

pytestmark = pytest.mark.e2e

KILLED_AT = "scheduler.run.after_cache_load"
# Long enough that a replica starved of CPU on a busy 2-core machine still renews in time.
LEASE_S = 10.0


def _start_replica(stack: RunningStack, url: str, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = next(line for line in stack.output if "ready on" in line)
    found = re.search(r"\(selector (\S+), embedders ([^)]+?)[,)]", ready)
    assert found, ready
    port = free_port()
    root.mkdir(parents=True)
    env = {**os.environ, "DATAPOOL_TOKEN": stack.token, "DATAPOOL_FAULT_DIR": str(root / "faults")}
    args = [
        "--port",
        str(port),
        "--state-dir",
        str(root),
        "--database-url",
        url,
        "--run-lease-s",
        str(LEASE_S),
    ]
    args += ["--selector", found[1], "--embedder", found[2].split(",")[0].strip()]
    args += ["--internal-token-file", str(stack.state_dir / "internal.token")]
    with open(root / "scheduler.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.scheduler", *args], stdout=log, stderr=log, env=env
        )
    return proc, f"127.0.0.1:{port}"


@dataclass
class Replicas:
    url: str
    root: Path
    a: subprocess.Popen[bytes]
    b: subprocess.Popen[bytes]
    address_a: str
    address_b: str


@pytest.fixture(scope="module")
def replicas(
    stack: RunningStack, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    url = postgres.new_database()
    root = tmp_path_factory.mktemp("replicas")
    # Both start at once (their imports take most of the time on a busy machine).
    (a, address_a), (b, address_b) = (_start_replica(stack, url, root / n) for n in ("a", "b"))
    try:
        for address, name in ((address_a, "a"), (address_b, "b")):
            assert wait_healthy(address, 120), (root / name / "scheduler.log").read_text()
        yield Replicas(url, root, a, b, address_a, address_b)
    finally:
        for proc in (a, b):
            proc.kill()
            proc.wait()


def test_twenty_runs_scheduled_at_once_across_two_replicas_each_run_exactly_once(
    stack: RunningStack, replicas: Replicas, tmp_path: Path
) -> None:
    clients = [
        ApiWorkflowClient(token=stack.token, address=a) for a in (replicas.address_a, replicas.address_b)
    ]
    clients[0].create_dataset(dataset_name=f"twenty-{tmp_path.name}", dataset_type=DatasetType.VIDEOS)
    (tmp_path / "videos").mkdir()
    clients[0].set_local_config(resource_path=str(tmp_path / "videos"), purpose=DatasourcePurpose.INPUT)
    clients[0].set_local_config(resource_path=str(tmp_path / "pool"), purpose=DatasourcePurpose.LIGHTLY)
    clients[1].set_dataset_id_by_name(f"twenty-{tmp_path.name}")

    def schedule(i: int) -> str:
        run_id: str = clients[i % 2].schedule_compute_worker_run(
            worker_config={}, selection_config=selection(0.0, 1)
        )
        return run_id

    with ThreadPoolExecutor(20) as pool:
        run_ids = list(pool.map(schedule, range(20)))
    assert len(set(run_ids)) == 20
    for i, run_id in enumerate(run_ids):
        # Watched through the other replica than the one that accepted it.
        assert wait_end(clients[(i + 1) % 2], run_id).ended_successfully()
    db = MetadataDB(replicas.url, migrate_schema=False)
    rows = [db.get_run(r) for r in run_ids]
    db.close()
    logs = "".join(
        line
        for name in ("a", "b")
        for line in (replicas.root / name / "scheduler.log").read_text().splitlines(keepends=True)
        if "lease" in line or "taking it over" in line
    )
    assert [r.attempt for r in rows] == [1] * 20, logs  # none ran twice
    owners = Counter(r.owner.split(":")[1] for r in rows if r.owner)
    assert owners == {str(replicas.a.pid): 10, str(replicas.b.pid): 10}


def test_killing_the_scheduler_running_a_run_lets_the_other_replica_finish_it_once(
    stack: RunningStack, replicas: Replicas, tmp_path: Path
) -> None:
    # Runs last in this module: it kills replica A.
    url, a, b, address_a, address_b = (
        replicas.url,
        replicas.a,
        replicas.b,
        replicas.address_a,
        replicas.address_b,
    )
    try:
        videos = tmp_path / "videos"
        videos.mkdir()
        for i in range(3):
            make_video(videos / f"v{i}.mp4", scene_seed=80 + i, n_frames=6)
        client_a = ApiWorkflowClient(token=stack.token, address=address_a)
        client_a.create_dataset(dataset_name=f"replicas-{tmp_path.name}", dataset_type=DatasetType.VIDEOS)
        client_a.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
        client_a.set_local_config(resource_path=str(tmp_path / "pool"), purpose=DatasourcePurpose.LIGHTLY)
        arm(replicas.root / "a" / "faults", KILLED_AT)  # replica A dies at this step of its run
        run_id = client_a.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 100))
        assert a.wait(timeout=120) == -9

        client_b = ApiWorkflowClient(token=stack.token, address=address_b)
        client_b.set_dataset_id_by_name(f"replicas-{tmp_path.name}")
        info = wait_end(client_b, run_id)
        assert info.ended_successfully(), info.message
        report = client_b.download_compute_worker_run_report_json(run_id)
        assert processed_paths(report) == {"v0.mp4", "v1.mp4", "v2.mp4"}
        db = MetadataDB(url, migrate_schema=False)
        row = db.get_run(run_id)
        db.close()
        assert row.attempt == 2 and row.owner is not None and f":{b.pid}:" in row.owner
        # Every selected frame is in the pool once (pool_embeddings refuses a name seen twice).
        frames = pool_embeddings(client_b, tmp_path)
        assert len(frames) == report["frames"]["selected"] > 0
        # A second run finds every file processed: nothing was left out of the one commit.
        again = client_b.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 100))
        assert wait_end(client_b, again).ended_successfully()
        assert client_b.download_compute_worker_run_report_json(again)["files"]["new"] == 0
    finally:
        for proc in (a, b):
            proc.kill()
            proc.wait()
