"""Running `datapool up`, scheduling runs and reading a pool back through the client, for assertions."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

# `datapool up` for every test folder lives in tests/stack_launcher.py; re-exported here, where
# the e2e tests import it from.
from stack_launcher import READY_TIMEOUT_S as READY_TIMEOUT_S
from stack_launcher import RunningStack as RunningStack
from stack_launcher import running_stack as running_stack

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose


def local_video_dataset(stack: RunningStack, name: str, videos: Path, pool: Path) -> ApiWorkflowClient:
    """A client on a new VIDEOS dataset `name` whose input is the folder `videos`, its pool `pool`."""
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=name, dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
    return client


def pool_embeddings(client: ApiWorkflowClient, tmp: Path) -> dict[str, np.ndarray]:
    path = tmp / f"emb-{len(list(tmp.glob('emb-*')))}.csv"
    client.download_embeddings_csv(str(path))
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header[0] == "filenames" and header[-1] == "labels"
    assert header[1:-1] == [f"embedding_{i}" for i in range(len(header) - 2)]
    out: dict[str, np.ndarray] = {}
    for row in body:
        assert row[0] not in out, f"frame {row[0]} is in the pool twice"
        out[row[0]] = np.array([float(x) for x in row[1:-1]], dtype=np.float64)
    return out


def selection(min_distance: float, n: int = 100) -> dict[str, Any]:
    return {
        "n_samples": n,
        "strategies": [
            {
                "input": {"type": "EMBEDDINGS"},
                "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": min_distance},
            }
        ],
    }


def run(client: ApiWorkflowClient, worker: dict[str, Any], sel: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    run_id = client.schedule_compute_worker_run(worker_config=worker, selection_config=sel)
    states = [info.state for info in client.compute_worker_run_info_generator(scheduled_run_id=run_id)]
    info = client.get_compute_worker_run_info(run_id)
    assert info.in_end_state()
    assert info.ended_successfully(), info.message
    assert states[-1] == "COMPLETED"
    report = client.download_compute_worker_run_report_json(
        client.get_compute_worker_run_from_scheduled_run(run_id)
    )
    return run_id, report


def processed_paths(report: dict[str, Any]) -> set[str]:
    return {f["path"] for f in report["files"]["processed"]}


def tag_names(client: ApiWorkflowClient, tag: str) -> list[str]:
    text = client.export_filenames_by_tag_name(tag)
    return [n for n in text.split("\n") if n]


def min_cross_distance(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return float(d.min())


def min_pairwise_distance(a: np.ndarray) -> float:
    if len(a) < 2:
        return float("inf")
    d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    d[np.diag_indices(len(a))] = np.inf
    return float(d.min())


def wait_end(client: ApiWorkflowClient, run_id: str) -> Any:
    for _ in client.compute_worker_run_info_generator(run_id):
        pass
    return client.get_compute_worker_run_info(run_id)


def service_pid(stack: RunningStack, module: str) -> int:
    """The pid of the stack's child process running `python -m <module>` now."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == stack.proc.pid and module.encode() in cmdline:
            return int(stat.parent.name)
    raise LookupError(f"no {module} process under datapool up (pid {stack.proc.pid})")
