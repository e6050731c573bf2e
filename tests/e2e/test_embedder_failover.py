"""`datapool up --embedders 2`: one embedder is killed while it embeds (several files in flight);
its files move to the other replica, the run completes, and every file is embedded and pooled
exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from e2e_support import pool_embeddings, processed_paths, running_stack, selection, wait_end

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.samples import make_video
from services.common.faults import hold, release

pytestmark = pytest.mark.e2e

FILES = [f"v{i}.mp4" for i in range(6)]
BATCH_SENT = "embedder.embed.batch_sent"


def _embedder_pids(stack_pid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == stack_pid and b"services.embedder" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def test_an_embedder_killed_mid_run_hands_its_files_to_the_other_and_each_file_is_pooled_once(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path / "stack", "failover-token", args=("--embedders", "2")) as stack:
        pids = _embedder_pids(stack.proc.pid)
        assert len(pids) == 2, pids
        videos = tmp_path / "videos"
        videos.mkdir()
        for i, name in enumerate(FILES):
            make_video(videos / name, scene_seed=90 + i, n_frames=40)
        client = ApiWorkflowClient(token=stack.token, address=stack.address)
        client.create_dataset(dataset_name="failover", dataset_type=DatasetType.VIDEOS)
        client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
        client.set_local_config(resource_path=str(tmp_path / "pool"), purpose=DatasourcePurpose.LIGHTLY)
        # Both replicas stop after their first batch of a file (a fault-point hold): the replica
        # killed then has a file in flight, cut mid-file, whatever the machine's speed.
        hold(stack.fault_dir, BATCH_SENT)
        run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 500))
        marker = stack.fault_dir / f"{BATCH_SENT}.held-{pids[0]}"
        deadline = time.monotonic() + 180
        while not marker.exists():
            info = client.get_compute_worker_run_info(run_id)
            assert not info.in_end_state(), info.message
            assert time.monotonic() < deadline, "the replica sent no batch in time"
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)
        release(stack.fault_dir, BATCH_SENT)
        info = wait_end(client, run_id)
        assert info.ended_successfully(), info.message
        # The dead replica had files in flight: they were retried on the other one.
        log = (stack.state_dir / "logs" / "scheduler.log").read_text()
        assert "failed on" in log and "retrying" in log, log[-3000:]
        report = client.download_compute_worker_run_report_json(run_id)
        processed = [f["path"] for f in report["files"]["processed"]]
        assert sorted(processed) == FILES and processed_paths(report) == set(FILES)
        assert report["files"]["skipped"] == []
        # Each frame pooled once (pool_embeddings refuses a name seen twice), every file in it.
        frames = pool_embeddings(client, tmp_path)
        assert len(frames) == report["frames"]["selected"]
        # A second run finds every file in the pool's processed manifest: nothing to embed.
        again = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.0, 500))
        assert wait_end(client, again).ended_successfully()
        assert client.download_compute_worker_run_report_json(again)["files"]["new"] == 0
