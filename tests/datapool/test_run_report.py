"""The typed run report: the pool's JSON keys as they always were, and the CLI summary read from it."""

from __future__ import annotations

import json
import math

import pytest

from datapool.cli_runs import print_summary
from datapool.run_report import (
    FileCounts,
    FrameCounts,
    ModelInfo,
    PoolPoint,
    ProcessedFile,
    RunReport,
    SelectedFrame,
    SkippedFile,
)
from services.scheduler.report.page import render_page


def completed() -> RunReport:
    return RunReport(
        run_id="r",
        pool_before=PoolPoint(1, 5),
        files=FileCounts(
            listed=3,
            media=2,
            new=2,
            processed=[
                ProcessedFile("a.mp4", 9, 12, 0, from_cache=True, frames_from_cache=12),
                ProcessedFile("b.mp4", 9, 12, 12, from_cache=False),
            ],
            skipped=[SkippedFile("c.mp4", "deleted since listing")],
        ),
        model=ModelInfo("m", 1280, "cpu", "default", "n1"),
        frames=FrameCounts(decoded=12, embedded=12, from_cache=12, selected=2),
        tag="run-x",
        pool_after=PoolPoint(2, 7),
        seconds={"total": 1.5},
        state="COMPLETED",
    )


def test_the_json_report_keeps_its_keys_in_their_order() -> None:
    out = completed().to_json()
    assert list(out) == [
        "run_id", "started_at", "config", "pool_before", "files", "model", "frames", "embedding_cache",
        "selected", "tag", "pool_after", "commit_attempts", "seconds", "finished_at", "state",
    ]  # fmt: skip
    assert list(out["files"]) == ["listed", "media", "new", "process_all", "processed", "skipped"]
    cached = out["files"]["processed"][0]
    assert list(cached) == ["path", "size", "frames", "frames_embedded", "frames_from_cache", "from_cache"]
    assert "frames_from_cache" not in out["files"]["processed"][1]
    assert out["model"] == {"name": "m", "backend": "cpu", "backend_reason": "default", "numbering": "n1"}
    assert out["pool_after"] == {"version": 2, "frames": 7}


def test_a_report_read_back_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(completed().to_json())
    assert capsys.readouterr().out.splitlines() == [
        "run summary",
        "  files listed 3, new 2, processed 2, skipped 1",
        "    skipped c.mp4: deleted since listing",
        "  frames embedded 12, from the embedding cache 12, selected 2",
        "  tag run-x; pool now {'version': 2, 'frames': 7}",
        "  seconds total 1.50",
    ]


def test_a_failed_runs_report_prints_zero_counts(capsys: pytest.CaptureFixture[str]) -> None:
    failed = RunReport("r", state="FAILED", error="commit failed").to_json()
    assert failed == {"run_id": "r", "state": "FAILED", "error": "commit failed"}
    print_summary(failed)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  files listed 0, new 0, processed 0, skipped 0"
    assert lines[-1] == "  tag (none: no frames added); pool now {}"


def test_a_report_read_back_writes_the_same_json_in_every_section() -> None:
    written = completed().to_json()
    assert RunReport.from_json(written).to_json() == written


def test_a_pick_without_a_recorded_distance_is_null_in_the_json_and_reads_back_as_nan() -> None:
    report = completed()
    report.selected = [
        SelectedFrame("f0", "a.mp4", 0, math.inf),  # the first pick into an empty pool
        SelectedFrame("f1", "a.mp4", 3, math.nan),
        SelectedFrame("f2", "b.mp4", 4, 0.25),
    ]
    written = report.to_json()
    back = RunReport.from_json(json.loads(json.dumps(written)))
    assert [s["distance"] for s in written["selected"]] == [math.inf, None, 0.25]
    assert [back.selected[0].distance, back.selected[2].distance] == [math.inf, 0.25]
    assert math.isnan(back.selected[1].distance) and back.to_json() == written


def test_the_page_says_a_picks_distance_was_not_recorded() -> None:
    report = completed()
    report.selected = [SelectedFrame("f1", "a.mp4", 3, math.nan), SelectedFrame("f2", "b.mp4", 4, 0.25)]
    data = report.to_json()
    page = render_page(data, {}, [(s, b"jpeg") for s in data["selected"]])
    assert "distance not recorded" in page and "distance 0.250" in page
