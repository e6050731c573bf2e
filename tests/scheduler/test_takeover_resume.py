"""A run continues from its last safe point, its own commit in the pool: a taken-over attempt
ends from an earlier attempt's commit (with frames or without), and an attempt whose Commit
call failed after the run's commit was made ends from that commit, each with the commit's picks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from stage_fakes import FakeEmbedder, FakeEmbedders, FakeSelector, Observer, video_run

from datapool.run_report import PoolPoint, SelectedFrame
from datapool.v1 import common_pb2, selector_pb2
from services.scheduler.pipeline import RunFailed, RunPipeline, RunSpec
from services.scheduler.run.interfaces import SelectorError


def _pick(path: str, index: int, distance: float) -> selector_pb2.Pick:
    return selector_pb2.Pick(
        file=common_pb2.FileRef(path=path),
        frame_index=index,
        frame_name=f"{path}-{index}.png",
        distance=distance,
    )


# Run "r" (video_run's id) committed pool version 2 on a pool of 4 frames, adding 3.
OUR_PICKS = [_pick("a.mp4", 0, float("inf")), _pick("a.mp4", 5, 0.75), _pick("b.mp4", 2, 0.5)]
OUR_COMMIT = selector_pb2.RunCommit(
    found=True, version=2, pool_frame_count=7, tag_name="run-r", picks=OUR_PICKS, base_frame_count=4
)
NO_FRAMES = selector_pb2.RunCommit(found=True, version=2, pool_frame_count=4, base_frame_count=4)


class PoolWithCommit(FakeSelector):
    """Its pool holds `ours` (None: no commit of the run). A commit `fails` with that status
    code: FAILED_PRECONDITION is the selector refusing a second commit of the run (another
    attempt committed OUR_COMMIT first); any other code is a lost reply of a commit made."""

    def __init__(self, ours: selector_pb2.RunCommit | None = None, fails: str = "") -> None:
        super().__init__()
        self.ours = ours
        self.fails = fails
        self.selects = 0
        self.lookups = 0

    def run_commit(self, pool: common_pb2.StoreLocation, run_id: str) -> selector_pb2.RunCommit:
        self.lookups += 1
        if self.ours is None or run_id != "r":
            return selector_pb2.RunCommit(found=False)
        return self.ours

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        self.selects += 1
        return super().select(requests)

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        if self.fails == "FAILED_PRECONDITION":
            self.ours = OUR_COMMIT
            raise SelectorError(self.fails, "run 'r' already committed pool version 2")
        done = super().commit(request).committed
        if self.fails:
            self.ours = selector_pb2.RunCommit(
                found=True, version=done.version, pool_frame_count=done.pool_frame_count,
                tag_name=done.tag_name, picks=done.picks, base_frame_count=0,
            )  # fmt: skip
            raise SelectorError(self.fails, "deadline exceeded")
        return selector_pb2.CommitResponse(committed=done)


def _taken_over(tmp_path: Path) -> RunSpec:
    return dataclasses.replace(video_run(tmp_path, ["a.mp4"]), attempt=2)


def test_a_taken_over_run_whose_earlier_attempt_committed_ends_from_that_commit_with_its_picks(
    tmp_path: Path,
) -> None:
    embedder, selector = FakeEmbedder("e:1"), PoolWithCommit(OUR_COMMIT)
    report = RunPipeline(FakeEmbedders(embedder), selector).execute(_taken_over(tmp_path), Observer())
    assert (embedder.embed_calls, selector.selects, selector.commits) == (0, 0, [])
    assert (report.tag, report.frames.selected) == ("run-r", 3)
    assert report.selected == [
        SelectedFrame("a.mp4-0.png", "a.mp4", 0, float("inf")),
        SelectedFrame("a.mp4-5.png", "a.mp4", 5, 0.75),
        SelectedFrame("b.mp4-2.png", "b.mp4", 2, 0.5),
    ]
    assert (report.pool_before, report.pool_after) == (PoolPoint(1, 4), PoolPoint(2, 7))
    assert report.files.note is not None and "found the commit in the pool" in report.files.note


def test_a_taken_over_run_whose_earlier_attempt_committed_no_frames_ends_from_that_commit(
    tmp_path: Path,
) -> None:
    embedder, selector = FakeEmbedder("e:1"), PoolWithCommit(NO_FRAMES)
    report = RunPipeline(FakeEmbedders(embedder), selector).execute(_taken_over(tmp_path), Observer())
    assert (embedder.embed_calls, selector.selects, selector.commits) == (0, 0, [])
    assert (report.tag, report.frames.selected, report.selected) == ("", 0, [])
    assert (report.pool_before, report.pool_after) == (PoolPoint(1, 4), PoolPoint(2, 4))
    assert report.files.note is not None and "version 2 (no tag, 0 frame(s))" in report.files.note


def test_a_first_attempt_never_looks_for_an_earlier_commit(tmp_path: Path) -> None:
    selector = PoolWithCommit(OUR_COMMIT)  # cannot happen: shows the lookup is skipped
    report = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), selector).execute(
        video_run(tmp_path, ["a.mp4"]), Observer()
    )
    assert (selector.lookups, selector.selects, len(selector.commits)) == (0, 1, 1)
    assert report.tag != OUR_COMMIT.tag_name


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_commit_refused_because_another_attempt_committed_ends_from_that_commit(
    tmp_path: Path, attempt: int
) -> None:
    spec = dataclasses.replace(video_run(tmp_path, ["a.mp4"]), attempt=attempt)
    selector = PoolWithCommit(fails="FAILED_PRECONDITION")
    report = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), selector).execute(spec, Observer())
    assert (report.tag, report.frames.selected, report.pool_after) == ("run-r", 3, PoolPoint(2, 7))
    assert [s.frame_name for s in report.selected] == [p.frame_name for p in OUR_PICKS]
    assert report.files.note is not None and "another attempt of the run committed first" in report.files.note


def test_a_commit_whose_reply_was_lost_ends_completed_from_the_commit_in_the_pool(tmp_path: Path) -> None:
    selector = PoolWithCommit(fails="DEADLINE_EXCEEDED")
    report = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), selector).execute(
        video_run(tmp_path, ["a.mp4"]), Observer()
    )
    (request,) = selector.commits
    assert report.tag == request.tag_name and report.frames.selected == 1
    assert [s.frame_name for s in report.selected] == ["a.mp4-0.png"]
    # What this attempt did itself stays in the report: it is as complete as a normal run's.
    assert [f.path for f in report.files.processed] == ["a.mp4"] and report.model is not None
    assert report.files.note is not None and "its reply was lost" in report.files.note


def test_a_failed_commit_with_no_commit_of_the_run_in_the_pool_fails_the_run(tmp_path: Path) -> None:
    class Unreachable(PoolWithCommit):
        def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
            raise SelectorError("UNAVAILABLE", "connection refused")

    with pytest.raises(RunFailed, match="commit failed: UNAVAILABLE"):
        RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), Unreachable()).execute(
            video_run(tmp_path, ["a.mp4"]), Observer()
        )


def test_a_takeover_that_cannot_ask_the_selector_for_the_run_commit_fails_saying_the_pool_may_hold_it(
    tmp_path: Path,
) -> None:
    class Down(PoolWithCommit):
        def run_commit(self, pool: common_pb2.StoreLocation, run_id: str) -> selector_pb2.RunCommit:
            raise SelectorError("UNAVAILABLE", "connection refused")

    with pytest.raises(RunFailed, match="nothing of this run or its complete commit"):
        RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), Down()).execute(_taken_over(tmp_path), Observer())


class CommitsOnce(FakeSelector):
    """Commits as FakeSelector does, checking that the run saved its draft report first."""

    def __init__(self, observer: Observer) -> None:
        super().__init__()
        self.observer = observer

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        assert len(self.observer.drafts) == 1, "the draft is saved before the commit, once"
        return super().commit(request)


def test_a_taken_over_run_reports_the_files_and_counts_its_committing_attempt_saved_before_the_commit(
    tmp_path: Path,
) -> None:
    # Attempt 1 runs to its commit (then "dies": its report is never stored); attempt 2 takes over.
    observer = Observer()
    first = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), CommitsOnce(observer)).execute(
        video_run(tmp_path, ["a.mp4", "b.mp4"]), observer
    )
    (draft,) = observer.drafts
    assert (draft["tag"], draft["selected"], draft.get("state", "")) == ("", [], "")
    picks = [
        selector_pb2.Pick(
            file=common_pb2.FileRef(path=s.source), frame_index=s.frame_index, frame_name=s.frame_name
        )
        for s in first.selected
    ]
    ours = selector_pb2.RunCommit(found=True, version=2, pool_frame_count=2, tag_name=first.tag, picks=picks)
    spec = dataclasses.replace(video_run(tmp_path, []), attempt=2, draft=draft)
    embedder = FakeEmbedder("e:2")
    again = RunPipeline(FakeEmbedders(embedder), PoolWithCommit(ours)).execute(spec, Observer())
    assert embedder.embed_calls == 0
    done, resumed = first.to_json(), again.to_json()
    for key in (
        "started_at",
        "pool_before",
        "model",
        "selection",
        "frames",
        "embedding_cache",
        "selected",
        "tag",
    ):
        assert resumed[key] == done[key], key
    assert {k: v for k, v in resumed["files"].items() if k != "note"} == done["files"]
    assert resumed["pool_after"] == {"version": 2, "frames": 2}
    assert resumed["seconds"].keys() == done["seconds"].keys()
    assert resumed["seconds"]["total"] >= draft["seconds"]["total"]
    assert "those the committing attempt saved before its commit" in resumed["files"]["note"]


@pytest.mark.parametrize("draft", [None, {"run_id": "another"}, {"run_id": "r", "files": {}}])
def test_a_taken_over_run_without_a_readable_draft_of_its_own_reports_the_commit_alone(
    tmp_path: Path, draft: dict[str, object] | None
) -> None:
    spec = dataclasses.replace(_taken_over(tmp_path), draft=draft)
    report = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), PoolWithCommit(OUR_COMMIT)).execute(
        spec, Observer()
    )
    assert (report.tag, len(report.selected), report.files.processed, report.model) == ("run-r", 3, [], None)
    assert report.files.note is not None and "saved no files or counts" in report.files.note
