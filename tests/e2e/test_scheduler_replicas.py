"""Three scheduler processes on one Postgres, beside the shared stack's selector and embedder: the
one running a run is killed mid-run, another takes the run over and finishes it from its last safe
point (files embedded before are not embedded again; a run that had committed is not committed
again), the pool holds each frame once, and the run is watched through a surviving replica."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_support import RunningStack, pool_embeddings, processed_paths, selection, wait_end
from postgres_server import PostgresServer

from datapool import ApiError, ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.channels import wait_healthy
from datapool.pool.layout import EMBEDDING_CACHE_PREFIX
from datapool.pool.repository import PoolRepository
from datapool.ports import free_port
from datapool.samples import make_video
from datapool.storage import open_store
from datapool.storage.locations import local_location
from datapool.v1 import scheduler_pb2
from services.common.faults import arm, held, hold
from services.scheduler.db import MetadataDB
from services.scheduler.report import report_key

pytestmark = pytest.mark.e2e

HELD_AT = "scheduler.run.file_embedded"
KILLED_AT = "scheduler.run.after_commit"
FRAMES = 8  # per clip
# Long enough that a replica starved of CPU on a busy 2-core machine still renews in time.
LEASE_S = 10.0


def _start_replica(stack: RunningStack, url: str, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = next(line for line in stack.output if "ready on" in line)
    found = re.search(r"\(selector (\S+), embedders ([^)]+?)[,)]", ready)
    assert found, ready
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)  # a test may arm its faults first
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
    c: subprocess.Popen[bytes]
    address_a: str
    address_b: str
    address_c: str

    def client(self, stack: RunningStack, name: str, dataset: str | None = None) -> ApiWorkflowClient:
        """A client of replica `name`, on the dataset named `dataset` when given."""
        client = ApiWorkflowClient(token=stack.token, address=getattr(self, f"address_{name}"))
        if dataset is not None:
            client.set_dataset_id_by_name(dataset)
        return client

    def pid_of(self, owner: str | None) -> int:
        assert owner is not None
        return int(owner.split(":")[1])


@pytest.fixture(scope="module")
def replicas(
    stack: RunningStack, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    url = postgres.new_database()
    root = tmp_path_factory.mktemp("replicas")
    # All start at once (their imports take most of the time on a busy machine).
    (a, address_a), (b, address_b), (c, address_c) = (
        _start_replica(stack, url, root / n) for n in ("a", "b", "c")
    )
    try:
        for address, name in ((address_a, "a"), (address_b, "b"), (address_c, "c")):
            assert wait_healthy(address, 120), (root / name / "scheduler.log").read_text()
        yield Replicas(url, root, a, b, c, address_a, address_b, address_c)
    finally:
        for proc in (a, b, c):
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
        for name in ("a", "b", "c")
        for line in (replicas.root / name / "scheduler.log").read_text().splitlines(keepends=True)
        if "lease" in line or "taking it over" in line
    )
    assert [r.attempt for r in rows] == [1] * 20, logs  # none ran twice
    owners = Counter(r.owner.split(":")[1] for r in rows if r.owner)
    assert owners == {str(replicas.a.pid): 10, str(replicas.b.pid): 10}


def _dataset(stack: RunningStack, replicas: Replicas, name: str, tmp_path: Path, videos: int) -> Path:
    """A VIDEOS dataset `name` on `videos` new clips of FRAMES frames; returns its pool folder."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(videos):
        make_video(folder / f"v{i}.mp4", scene_seed=80 + i, n_frames=FRAMES)
    client = replicas.client(stack, next(n for n in "abc" if getattr(replicas, n).poll() is None))
    client.create_dataset(dataset_name=name, dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(folder), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(tmp_path / "pool"), purpose=DatasourcePurpose.LIGHTLY)
    return tmp_path / "pool"


def _finished_by_a_survivor(
    stack: RunningStack, replicas: Replicas, killed: subprocess.Popen[bytes], run_id: str, name: str
) -> tuple[ApiWorkflowClient, dict[str, Any]]:
    """Waits for the run's end through a live replica; checks a live one took the run over."""
    alive = next(n for n in ("a", "b", "c") if getattr(replicas, n).poll() is None)
    client = replicas.client(stack, alive, name)
    info = wait_end(client, run_id)
    assert info.ended_successfully(), info.message
    db = MetadataDB(replicas.url, migrate_schema=False)
    row = db.get_run(run_id)
    db.close()
    assert row.attempt == 2 and replicas.pid_of(row.owner) not in (killed.pid, None)
    return client, client.download_compute_worker_run_report_json(run_id)


def test_a_run_whose_scheduler_dies_after_its_commit_is_finished_from_that_commit_not_committed_again(
    stack: RunningStack, replicas: Replicas, tmp_path: Path
) -> None:
    name = f"after-commit-{tmp_path.name}"
    pool = _dataset(stack, replicas, name, tmp_path, videos=2)
    arm(replicas.root / "a" / "faults", KILLED_AT)  # replica A dies right after its commit
    # process_all: without the safe point, the run's second attempt would select and commit again.
    worker = {"datasource": {"process_all": True}}
    run_id = replicas.client(stack, "a", name).schedule_compute_worker_run(
        worker_config=worker, selection_config=selection(0.0, 5)
    )
    assert replicas.a.wait(timeout=120) == -9
    client, report = _finished_by_a_survivor(stack, replicas, replicas.a, run_id, name)
    manifest = PoolRepository(open_store(local_location(str(pool)))).newest_manifest()
    assert manifest is not None
    commits = [s for s in manifest.segments if s.run_id == run_id]
    assert len(commits) == 1 and manifest.version == 1, manifest.segments
    assert report["tag"] == commits[0].tag and report["frames"]["selected"] == commits[0].frame_count == 5
    assert report["pool_after"] == {"version": 1, "frames": 5}
    assert "found the commit in the pool" in report["files"]["note"]
    assert len(pool_embeddings(client, tmp_path)) == 5
    # The picks as the commit recorded them, in pick order: the report lists them as a normal run's does.
    entries = PoolRepository(open_store(local_location(str(pool)))).load_frames(commits[0])
    picks = report["selected"]
    assert [(p["frame_name"], p["source"], p["frame_index"]) for p in picks] == [
        (f.frame_name, f.file.path, f.frame_index) for f in entries
    ]
    assert picks[0]["distance"] == math.inf and all(0 < p["distance"] < math.inf for p in picks[1:])
    assert "Picks (5 of 5)" in _report_html(pool, run_id)
    # The files and counts are those replica A saved right before its commit.
    assert processed_paths(report) == {"v0.mp4", "v1.mp4"} and report["files"]["new"] == 2
    assert report["frames"]["embedded"] + report["frames"]["from_cache"] == 2 * FRAMES
    assert report["model"]["name"] and report["selection"]["picked"] == 5


def _report_html(pool: Path, run_id: str) -> str:
    """The run's report.html, once the scheduler that ended the run has drawn it."""
    path = pool / report_key(run_id, "report.html")
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.1)
    return path.read_text()


def test_killing_the_scheduler_running_a_run_lets_another_replica_finish_it_without_embedding_twice(
    stack: RunningStack, replicas: Replicas, tmp_path: Path
) -> None:
    # Runs last in this module: it kills replica B (A is dead already).
    name = f"mid-embed-{tmp_path.name}"
    pool = _dataset(stack, replicas, name, tmp_path, videos=4)
    faults_b = replicas.root / "b" / "faults"
    # B's embedding threads stop after their first file each: a file or two embedded, two or more not.
    hold(faults_b, HELD_AT)
    run_id = replicas.client(stack, "b", name).schedule_compute_worker_run(
        worker_config={}, selection_config=selection(0.0, 100)
    )
    cache = pool / EMBEDDING_CACHE_PREFIX
    deadline = time.monotonic() + 120
    while not (held(faults_b, HELD_AT) and list(cache.rglob("*.emb"))):
        assert time.monotonic() < deadline, "replica B embedded no file"
        time.sleep(0.05)
    replicas.b.kill()
    replicas.b.wait()
    time.sleep(0.5)  # the selector's writes of the cache entries of files it had received end
    cached_at_kill = len(list(cache.rglob("*.emb")))
    assert 1 <= cached_at_kill <= 2

    client, report = _finished_by_a_survivor(stack, replicas, replicas.b, run_id, name)
    assert processed_paths(report) == {f"v{i}.mp4" for i in range(4)}
    # The files B embedded came from the cache (a write that landed after the count may add
    # one); only the others were embedded, each once.
    from_cache = report["embedding_cache"]["files_from_cache"]
    assert cached_at_kill <= from_cache <= 2
    assert report["embedding_cache"]["files_embedded"] == 4 - from_cache
    assert report["frames"]["embedded"] == FRAMES * (4 - from_cache)
    # Every selected frame is in the pool once (pool_embeddings refuses a name seen twice).
    frames = pool_embeddings(client, tmp_path)
    assert len(frames) == report["frames"]["selected"] > 0
    # A second run finds every file processed: nothing was left out of the one commit.
    again = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 100))
    assert wait_end(client, again).ended_successfully()
    assert client.download_compute_worker_run_report_json(again)["files"]["new"] == 0


def test_a_run_whose_scheduler_dies_after_a_commit_of_no_frames_ends_completed_from_that_commit(
    stack: RunningStack, replicas: Replicas, tmp_path: Path
) -> None:
    # Runs after the tests that kill A and B: a fourth replica D, armed to die right after its
    # commit, runs it, and C (or any replica still alive) takes it over.
    name = f"no-frames-{tmp_path.name}"
    pool = _dataset(stack, replicas, name, tmp_path, videos=2)
    arm(replicas.root / "d" / "faults", KILLED_AT)
    d, address_d = _start_replica(stack, replicas.url, replicas.root / "d")
    try:
        assert wait_healthy(address_d, 120), (replicas.root / "d" / "scheduler.log").read_text()
        client_d = ApiWorkflowClient(token=stack.token, address=address_d)
        client_d.set_dataset_id_by_name(name)
        # n_samples 0: the commit records both files as processed and adds no frame, so no tag.
        run_id = client_d.schedule_compute_worker_run(
            worker_config={"datasource": {"process_all": True}}, selection_config=selection(0.0, 0)
        )
        assert d.wait(timeout=120) == -9
    finally:
        d.kill()
        d.wait()
    # Until D's lease lapses the run's row holds the draft D saved before its commit, which
    # no replica serves as the run's report.
    db = MetadataDB(replicas.url, migrate_schema=False)
    row = db.get_run(run_id)
    db.close()
    assert row.state == scheduler_pb2.COMMITTING and row.report is not None
    assert processed_paths(row.report) == {"v0.mp4", "v1.mp4"}
    alive = next(n for n in "abc" if getattr(replicas, n).poll() is None)
    with pytest.raises(ApiError, match="no report yet"):
        replicas.client(stack, alive, name).download_compute_worker_run_report_json(run_id)
    _, report = _finished_by_a_survivor(stack, replicas, d, run_id, name)
    manifest = PoolRepository(open_store(local_location(str(pool)))).newest_manifest()
    assert manifest is not None and manifest.version == 1, manifest
    (commit,) = manifest.segments
    assert (commit.run_id, commit.tag, commit.frame_count) == (run_id, "", 0)
    assert (report["tag"], report["frames"]["selected"], report["selected"]) == ("", 0, [])
    assert report["pool_after"] == {"version": 1, "frames": 0}
    assert "found the commit in the pool" in report["files"]["note"]
    assert "Picks (0 of 0)" in _report_html(pool, run_id)
    assert processed_paths(report) == {"v0.mp4", "v1.mp4"} and report["files"]["process_all"]
