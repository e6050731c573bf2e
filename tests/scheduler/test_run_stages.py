"""The run's stages against fakes of the remotes Protocols: replicas that die or refuse the
backend, a commit that loses a race, and work done once per run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from stage_fakes import MODEL, FakeEmbedder, FakeEmbedders, FakeSelector, Observer, video_run

from datapool.run_report import PoolPoint
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB
from services.scheduler.pipeline import RunFailed, RunPipeline
from services.scheduler.run.model_check import cache_sampling_key
from services.scheduler.runs import RunManager

FILES = ["a.mp4", "b.mp4", "c.mp4"]


def test_files_of_an_embedder_that_dies_are_embedded_on_another_replica(tmp_path: Path) -> None:
    dying, healthy = FakeEmbedder("10.0.0.1:1", dies_after=1), FakeEmbedder("10.0.0.2:1")
    selector = FakeSelector()
    report = RunPipeline(FakeEmbedders(dying, healthy), selector).execute(
        video_run(tmp_path, FILES), Observer()
    )
    assert [f.path for f in report.files.processed] == FILES
    assert report.files.skipped == []
    assert len(dying.embedded) == 1 and sorted(dying.embedded + healthy.embedded) == FILES
    # The dead replica's attempts left nothing in the selection.
    assert selector.items.count("file_complete") == 3
    assert report.frames.selected == 3


def test_a_backend_the_embedders_refuse_fails_the_run_naming_the_config_key(tmp_path: Path) -> None:
    # Both refuse when asked to embed (a load failure GetModelInfo could not foresee).
    replicas = [FakeEmbedder(f"10.0.0.{i}:1", refuses="failed to load") for i in (1, 2)]
    with pytest.raises(RunFailed) as failed:
        RunPipeline(FakeEmbedders(*replicas), FakeSelector()).execute(
            video_run(tmp_path, ["a.mp4"], model_backend="torch-cuda"), Observer()
        )
    key = "worker_config.model_backend='torch-cuda'"
    assert str(failed.value).startswith(
        f"{key} cannot be used: 10.0.0.2:1: FAILED_PRECONDITION: failed to load"
    )
    # No second GetModelInfo to tell a refusal from a bad request, and no retry elsewhere.
    assert sum(r.model_info_calls for r in replicas) == 1
    assert sum(r.embed_calls for r in replicas) == 1


def test_a_refused_backend_ends_the_run_failed_with_the_key_in_its_message(
    make_db: Callable[[], MetadataDB], tmp_path: Path
) -> None:
    db = make_db()
    dataset = db.create_dataset("d", scheduler_pb2.VIDEOS)
    spec = video_run(tmp_path, ["a.mp4"], model_backend="torch-cuda")
    datasources = DatasourceCatalog(db, None)
    datasources.set(dataset.id, scheduler_pb2.INPUT, spec.input, verify=False)
    datasources.set(dataset.id, scheduler_pb2.LIGHTLY, spec.pool, verify=False)
    ended = threading.Event()
    pipeline = RunPipeline(FakeEmbedders(FakeEmbedder("e:1", refuses="no CUDA GPU")), FakeSelector())
    manager = RunManager(db, pipeline, datasources=datasources)
    try:
        run = manager.schedule(dataset.id, scheduler_pb2.VIDEOS, spec.config)
        for _ in range(100):
            if db.get_run(run.id).state in (scheduler_pb2.COMPLETED, scheduler_pb2.FAILED):
                ended.set()
                break
            manager.wait_for_change(0.1)
        row = db.get_run(run.id)
    finally:
        manager.shutdown()
        db.close()
    assert ended.is_set() and row.state == scheduler_pb2.FAILED
    assert row.message.startswith("worker_config.model_backend='torch-cuda' cannot be used: e:1: ")
    assert row.report == {"run_id": run.id, "state": "FAILED", "error": row.message}


def test_a_lost_commit_race_reports_the_pool_the_commit_produced(tmp_path: Path) -> None:
    # Another writer's 5 frames landed first; the merged selection needed one more frame.
    selector = FakeSelector(races=1, other_frames=5)
    report = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), selector).execute(
        video_run(tmp_path, ["a.mp4"]), Observer()
    )
    assert report.pool_before == PoolPoint(version=1, frames=5)
    assert report.pool_after == PoolPoint(version=3, frames=7)
    assert report.commit_attempts == 2
    assert [f.key for f in selector.commits[1].frames] == ["frames/r/a.mp4-0.png", "frames/r/a.mp4-1.png"]
    assert report.to_json()["pool_after"] == {"version": 3, "frames": 7}


def test_the_model_is_asked_once_per_run_and_its_sampling_key_reaches_the_selection(tmp_path: Path) -> None:
    replicas = [FakeEmbedder("e:1"), FakeEmbedder("e:2")]
    spec = video_run(tmp_path, FILES)
    report = RunPipeline(FakeEmbedders(*replicas, streams=2), FakeSelector()).execute(spec, Observer())
    assert sum(r.model_info_calls for r in replicas) == 1
    assert report.model == MODEL
    assert report.to_json()["model"] == {
        "name": "m",
        "backend": "cpu",
        "backend_reason": "default",
        "numbering": "n1",
    }
    assert cache_sampling_key(spec.config.worker.frame_sampling, MODEL.numbering).endswith(";n1")
