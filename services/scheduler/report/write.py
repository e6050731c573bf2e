"""Writes a finished run's report.json and report.html into its pool datasource.

The report is a reader's aid, not part of the pool: a report that cannot be drawn or written is
logged and the run still completes as committed. Both files pass through the scrubber first, as the
stored report does, so no credential reaches the pool in them.

Drawing takes about half a second (matplotlib), longer than a small run itself, so it happens after
the run has ended, in one worker process of its own at a lower CPU priority (REPORT_PRIORITY:
SCHED_IDLE, as the embedders' and the selections' run work on one host); `wait_for_report` lets a
download of report.html wait for it. A process, not a thread: drawing holds the GIL, and in the
scheduler's process it took 11-22% of the GIL from the event loop that answers every call (py-spy,
bench/load/scenarios.py reads), its first report importing scikit-learn and matplotlib for seconds.
A scheduler that stops gracefully still finishes the reports it owes first (the pool's pending work
is waited for at exit).
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image

from datapool.cpu_priority import IDLE, Priority, lower
from datapool.pool.repository import PoolRepository
from datapool.run_report import RunReport
from datapool.storage import Store, open_store
from datapool.v1 import common_pb2
from services.common.secrets import SCRUBBER, install_log_scrubbing
from services.scheduler.report import report_key
from services.scheduler.report.page import render_page
from services.scheduler.run.context import RunContext

if TYPE_CHECKING:
    from services.scheduler.report.plots import PoolVectors

log = logging.getLogger(__name__)
T = TypeVar("T")

# Pools beyond this many frames get no distance histograms or 2-D view in the report: loading
# them would cost the run more than the report is worth (`datapool view` shows them).
MAX_POOL_FRAMES = 200_000
THUMBNAILS = 48
THUMBNAIL_PX = 128


# The report process's CPU priority (datapool/cpu_priority.py): it yields the CPU to the
# scheduler's calls at once, and shares what is left with the runs' work.
REPORT_PRIORITY: Priority = IDLE


# How often the report process looks whether the scheduler that started it still lives.
PARENT_CHECK_S = 1.0


def _report_process_start() -> None:
    lower(0, REPORT_PRIORITY)
    install_log_scrubbing()
    # A scheduler killed with SIGKILL (OOM killer, a lost node, the takeover tests) never shuts its
    # executor down, and its report process waited for work forever, orphaned: it ends with it.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _new_writer() -> ProcessPoolExecutor:
    # Spawned, not forked: the scheduler has gRPC and store threads that a fork would copy mid-call.
    # The process starts with the first report, not with the scheduler.
    spawn = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=1, mp_context=spawn, initializer=_report_process_start)


_WRITER = _new_writer()
_pending: dict[str, Future[None]] = {}
_lock = threading.Lock()


def _submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` in the report process."""
    global _WRITER
    with _lock:
        try:
            return _WRITER.submit(fn, *args)
        except BrokenProcessPool:  # the report process died (killed, out of memory): a new one
            _WRITER = _new_writer()
            return _WRITER.submit(fn, *args)


def write_reports(ctx: RunContext, report: RunReport) -> None:
    """Queues the run's reports; the run does not wait for them."""
    text = SCRUBBER.scrub(SCRUBBER.scrub(json.dumps(report.to_json()), ctx.spec.pool), ctx.spec.input)
    future = _submit(_write, ctx.spec.pool, json.loads(text))
    with _lock:
        _pending[report.run_id] = future
    future.add_done_callback(lambda _: _forget(report.run_id, future))


def wait_for_report(run_id: str, timeout_s: float) -> None:
    """Returns once run `run_id`'s reports are written (or failed), if this scheduler owes them."""
    with _lock:
        future = _pending.get(run_id)
    if future is not None:
        wait_futures([future], timeout=timeout_s)


def _forget(run_id: str, future: Future[None]) -> None:
    with _lock:
        if _pending.get(run_id) is future:
            del _pending[run_id]


def _write(pool: common_pb2.StoreLocation, data: dict[str, Any]) -> None:
    try:
        store = open_store(pool)
        html = build_html(store, data)
        store.put(report_key(data["run_id"], "report.json"), json.dumps(data, indent=1).encode())
        store.put(report_key(data["run_id"], "report.html"), html.encode())
    except Exception as e:  # whatever breaks the report must not fail a committed run
        log.warning("run %s: cannot write its report into the pool: %s", data["run_id"], e)


def build_html(store: Store, report: dict[str, Any]) -> str:
    # matplotlib and scikit-learn take seconds to import: only when the first report is drawn,
    # not when the scheduler starts.
    from datapool.view.projection import project
    from services.scheduler.report.plots import density_figure, summary_figure, view_figure

    pool, keys = _pool(store, report)
    figures = {"summary": summary_figure(report, pool), "density": density_figure(report)}
    if len(pool.vectors) >= 3:
        figures["view"] = view_figure(project(pool.vectors, "pca"), pool.this_run)
    thumbnails = []
    for pick in report["selected"][:THUMBNAILS]:
        key = keys.get(pick["frame_name"])
        if key is not None:
            thumbnails.append((pick, _thumbnail(store.read(key))))
    return render_page(report, figures, thumbnails)


def _pool(store: Store, report: dict[str, Any]) -> tuple[PoolVectors, dict[str, str]]:
    """The pool after the run and the keys of this run's frames by frame name."""
    from services.scheduler.report.plots import PoolVectors

    empty = PoolVectors(np.zeros((0, 1), np.float32), np.zeros(0, bool))
    version = int(report["pool_after"]["version"])
    repo = PoolRepository(store)
    manifest = repo.manifest(version) if version else None
    if manifest is None:
        return empty, {}
    mine = [s for s in manifest.segments if s.run_id == report["run_id"]]
    keys = {f.frame_name: f.key for s in mine for f in repo.load_frames(s)}
    if manifest.frame_count > MAX_POOL_FRAMES:
        return empty, keys
    blocks = [repo.load_embeddings(s, manifest.dim) for s in manifest.segments]
    this_run = np.concatenate(
        [np.full(s.frame_count, s.run_id == report["run_id"]) for s in manifest.segments]
    )
    return PoolVectors(np.concatenate(blocks), this_run), keys


def _thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()
