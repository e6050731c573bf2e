"""A real `datapool up` against what breaks runs: odd file names, a killed embedder, a frozen
scheduler, and `datapool up` stopped during a run."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from e2e_support import (
    RunningStack,
    pool_embeddings,
    running_stack,
    selection,
    service_pid,
    tag_names,
    wait_end,
)

from datapool import ApiError, ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.samples import make_video
from datapool.v1 import scheduler_pb2
from services.common.faults import held, hold, release
from services.scheduler.db import MetadataDB
from services.scheduler.runs import ACTIVE_STATES, RunManager

pytestmark = pytest.mark.e2e


def dataset(stack: RunningStack, root: Path, name: str) -> tuple[ApiWorkflowClient, Path]:
    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=name, dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(root / "pool"), purpose=DatasourcePurpose.LIGHTLY)
    return client, videos


def test_odd_file_names_are_skipped_naming_them_or_shortened_and_the_run_completes(
    stack: RunningStack, tmp_path: Path
) -> None:
    client, videos = dataset(stack, tmp_path, f"names-{tmp_path.name}")
    good = make_video(videos / "good.mp4", scene_seed=1, n_frames=8)
    long_name = "x" * 246 + ".mp4"  # 250 bytes: its frame names would pass 255 bytes
    make_video(videos / long_name, scene_seed=2, n_frames=8)
    shutil.copy(good, videos / os.fsdecode(b"bad\xff\xfe.mp4"))
    shutil.copy(good, videos / "two\nlines.mp4")
    (videos / "loop.mp4").symlink_to("loop.mp4")
    (videos / "sub").mkdir()
    (videos / "sub" / "up").symlink_to("..")

    run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 100))
    info = wait_end(client, run_id)
    assert info.ended_successfully(), info.message
    report = client.download_compute_worker_run_report_json(run_id)
    assert sorted(f["path"] for f in report["files"]["processed"]) == ["good.mp4", long_name]
    assert {f["path"]: f["reason"] for f in report["files"]["skipped"]} == {
        "bad\\xff\\xfe.mp4": "the file name is not valid UTF-8; rename the file",
        "loop.mp4": "cannot be read: Too many levels of symbolic links",
        "sub/up/": "a symbolic link loop (a folder inside itself)",
        "two\\nlines.mp4": (
            "the file name contains a line break, which would split the pool's exported file names"
        ),
    }
    # Every frame of both files is pooled, under names a local folder takes, one per line.
    pooled = pool_embeddings(client, tmp_path)
    assert len(pooled) == 16
    assert sorted(tag_names(client, report["tag"])) == sorted(pooled)
    assert all(len(name.encode()) <= 200 for name in pooled)
    assert sum(name.startswith("x" * 100) for name in pooled) == 8
    # No orphans: every PNG written is a pooled frame.
    assert sorted(p.name for p in (tmp_path / "pool" / "frames").rglob("*.png")) == sorted(pooled)


FRAMES = 40


def test_a_killed_embedder_is_waited_for_and_every_file_embedded(stack: RunningStack, tmp_path: Path) -> None:
    client, videos = dataset(stack, tmp_path / "a", f"kill-{tmp_path.name}")
    for i in range(5):
        make_video(videos / f"v{i}.mp4", scene_seed=40 + i, n_frames=FRAMES)
    other, other_videos = dataset(stack, tmp_path / "b", f"after-kill-{tmp_path.name}")
    make_video(other_videos / "w.mp4", scene_seed=50, n_frames=8)

    run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 10))
    killed = False
    for info in client.watch_compute_worker_run(run_id):
        p = info.progress
        if not killed and p["frames_embedded"] > 0 and p["files_done"] < p["files_total"]:
            os.kill(service_pid(stack, "services.embedder"), signal.SIGKILL)
            killed = True
            # Scheduled while the only embedder is down: it waits for it to come back.
            after = other.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 10))
    assert killed, "the run ended before the embedder could be killed mid-run"
    info = client.get_compute_worker_run_info(run_id)
    assert info.ended_successfully(), info.message
    assert "skipped" not in info.message
    report = client.download_compute_worker_run_report_json(run_id)
    assert report["files"]["skipped"] == []
    assert [f["path"] for f in report["files"]["processed"]] == [f"v{i}.mp4" for i in range(5)]
    assert report["frames"]["embedded"] == 5 * FRAMES
    assert wait_end(other, after).ended_successfully()
    assert any("embedder-0 exited with code -9; restarting" in line for line in stack.output)


def test_a_frozen_scheduler_ends_the_watch_within_its_idle_limit(stack: RunningStack, tmp_path: Path) -> None:
    client, videos = dataset(stack, tmp_path, f"frozen-{tmp_path.name}")
    make_video(videos / "v.mp4", scene_seed=60, n_frames=8)
    run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 10))
    watch = client.compute_worker_run_info_generator(run_id, idle_timeout_s=2.0)
    next(watch)
    scheduler = service_pid(stack, "services.scheduler")
    outcome: list[BaseException | None] = []
    os.kill(scheduler, signal.SIGSTOP)
    try:
        t = time.monotonic()

        def follow() -> None:
            try:
                for _ in watch:
                    pass
                outcome.append(None)
            except BaseException as e:
                outcome.append(e)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        follower.join(10)
        elapsed = time.monotonic() - t
    finally:
        os.kill(scheduler, signal.SIGCONT)
    assert outcome, "the watch was still blocked 10 s after the scheduler froze"
    error = outcome[0]
    assert isinstance(error, ApiError), error
    assert elapsed < 4.0
    assert f"no word from the scheduler at {stack.address} for 2s (idle_timeout_s)" in error.message
    assert wait_end(client, run_id).ended_successfully()


HELD = "scheduler.run.after_cache_load"


def test_stopping_datapool_up_during_a_run_ends_it_failed_interrupted(tmp_path: Path) -> None:
    token = "stop-test-token"
    with running_stack(tmp_path / "stack", token) as own:
        client, videos = dataset(own, tmp_path, "stopped")
        make_video(videos / "v.mp4", scene_seed=70, n_frames=8)
        hold(own.fault_dir, HELD)
        run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 10))
        deadline = time.monotonic() + 60
        while held(own.fault_dir, HELD) == 0:
            assert time.monotonic() < deadline, "the run never reached the held step"
            time.sleep(0.05)
        # The run's thread goes on once the scheduler's server has stopped, into channels that
        # are closing under it: the moment `datapool up`'s stop hits a running pipeline.
        log = own.state_dir / "logs" / "scheduler.log"

        def release_once_stopping() -> None:
            deadline = time.monotonic() + 30
            while "scheduler stopped" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
            release(own.fault_dir, HELD)

        threading.Thread(target=release_once_stopping, daemon=True).start()
    db = MetadataDB(own.state_dir / "datapool.sqlite3")
    try:
        row = db.get_run(run_id)
        if "scheduler stopped" not in log.read_text():
            # On a loaded machine the scheduler may not get to its SIGTERM handler within
            # `datapool up`'s grace and is SIGKILLed: then the next start ends the run.
            assert row.state in ACTIVE_STATES
            RunManager(db, pipeline=None).shutdown()  # type: ignore[arg-type]
            row = db.get_run(run_id)
    finally:
        db.close()
    assert row.state == scheduler_pb2.FAILED
    assert row.message.startswith("interrupted: the scheduler stopped during this run"), row.message
