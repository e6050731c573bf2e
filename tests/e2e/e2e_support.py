"""Reading a pool back through the client, for assertions."""

from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datapool import ApiWorkflowClient


@dataclass
class RunningStack:
    address: str
    token: str
    fault_dir: Path
    state_dir: Path
    proc: subprocess.Popen[str]
    output: list[str]


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
