"""Shared builders for the selector tests: vectors, candidate streams, sessions, and a real
selector process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from datapool.channels import wait_healthy
from datapool.internal_token import ensure_token_file, read_token_file
from datapool.pool.files import FileRef
from datapool.pool.repository import PoolRepository
from datapool.ports import free_port
from services.selector.service import SelectorService
from services.selector.session import SelectionSession, SelectionSpec

F32 = npt.NDArray[np.float32]
DIM = 32
MODEL = "test-model"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SelectorProcess:
    address: str
    token: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def selector_process(
    tmp: Path, log_level: str = "WARNING", extra_args: Sequence[str] = ()
) -> Iterator[SelectorProcess]:
    """A real `python -m services.selector` on a free port, given its internal token by file
    (tmp/internal.token) and logging to tmp/selector.log; killed at the end if still running."""
    port = free_port()
    token_file = ensure_token_file(tmp / "internal.token")
    command = [sys.executable, "-m", "services.selector", "--internal-token-file", str(token_file)]
    with open(tmp / "selector.log", "wb") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", log_level, *extra_args],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        address = f"127.0.0.1:{port}"
        try:
            assert wait_healthy(address, timeout=30), (tmp / "selector.log").read_text()
            yield SelectorProcess(address, read_token_file(token_file), process)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def clustered_unit_vectors(
    seed: int, clusters: int, per_cluster: int, dim: int = DIM, spread: float = 0.05
) -> F32:
    """Rows grouped in tight clusters around random directions, L2-normalised like the model's."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    rows = np.repeat(centres, per_cluster, axis=0) + spread * rng.normal(size=(clusters * per_cluster, dim))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def file_ref(path: str, etag: str = "e1") -> FileRef:
    return FileRef(path, 1000, etag)


def spec(
    session_id: str,
    n_samples: int = -1,
    proportion: float = -1.0,
    min_distance: float = 0.0,
    model: str = MODEL,
    run_id: str = "",
) -> SelectionSpec:
    return SelectionSpec(
        session_id, run_id or f"run-{session_id}", n_samples, proportion, min_distance, model
    )


def select(
    service: SelectorService,
    repo: PoolRepository,
    selection: SelectionSpec,
    files: Mapping[FileRef, F32],
    dtype: str = "float32",
    batch_rows: int = 7,
) -> SelectionSession:
    """Streams each file's vectors in batches, completes every file, and finishes the Select."""
    stream = service.open_select(selection, repo)
    for file, vectors in files.items():
        packed = vectors.astype("<f2" if dtype == "float16" else "<f4")
        for start in range(0, len(vectors), batch_rows):
            block = packed[start : start + batch_rows]
            indices = list(range(start, start + len(block)))
            stream.add_batch(file, indices, block.tobytes(), vectors.shape[1], dtype)
        stream.complete_file(file, len(vectors), "video")
    return service.finish_select(stream)


def rendered(session: SelectionSession) -> dict[str, str]:
    """A frame key for every candidate, as if the scheduler rendered them all."""
    return {name: f"frames/{session.spec.run_id}/{name}" for name in session.candidates.frame_names}


def rendered_picks(session: SelectionSession) -> dict[str, str]:
    return {p.frame_name: f"frames/{session.spec.run_id}/{p.frame_name}" for p in session.picks}


def pairwise_min_distance(a: F32, b: F32) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    diff = a.astype(np.float64)[:, None, :] - b.astype(np.float64)[None, :, :]
    return float(np.sqrt((diff**2).sum(axis=2)).min())


def earlier_min_distances(rows: F32) -> list[float]:
    """For each row: its distance to the nearest earlier row (inf for the first)."""
    out = [float("inf")]
    for i in range(1, len(rows)):
        out.append(pairwise_min_distance(rows[i : i + 1], rows[:i]))
    return out
