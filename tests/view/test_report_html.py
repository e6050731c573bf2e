"""report.html as a run writes it: its numbers against report.json, and the page in chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import grpc
import pytest
from playwright.sync_api import Browser
from view_support import Datasets, watched_page

from datapool.client_models import ApiError
from datapool.pool.gc import collect_garbage
from datapool.storage import LocalStore


class _Cells(HTMLParser):
    """The page's `data-key` cells: key -> text."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._key = dict(attrs).get("data-key")

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.cells[self._key] = data
            self._key = None


class _Rows(HTMLParser):
    """The cells of each row of the page's `table#<table_id>`."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self._inside, self._cell = table_id, False, False
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        self._cell = self._inside and tag == "td"

    def handle_endtag(self, tag: str) -> None:
        self._inside = self._inside and tag != "table"

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.rows[-1].append(data)
            self._cell = False


def _expected(report: dict[str, Any]) -> dict[str, str]:
    files, frames = report["files"], report["frames"]
    out = {f"frames.{k}": str(frames[k]) for k in ("decoded", "embedded", "from_cache", "selected")}
    out |= {f"files.{k}": str(files[k]) for k in ("listed", "media", "new")}
    out |= {"files.processed": str(len(files["processed"])), "files.skipped": str(len(files["skipped"]))}
    out |= {"pool_before.frames": str(report["pool_before"]["frames"])}
    out |= {"pool_after.frames": str(report["pool_after"]["frames"]), "tag": report["tag"]}
    out |= {f"seconds.{k}": str(v) for k, v in report["seconds"].items()}
    return out


def test_the_reports_numbers_agree_with_report_json(datasets: Datasets, tmp_path: Path) -> None:
    with datasets.client(datasets.two_runs) as client:
        for run_id, report in datasets.runs:
            client.download_compute_worker_run_report_html(run_id, tmp_path / "report.html")
            parser = _Cells()
            parser.feed((tmp_path / "report.html").read_text())
            assert parser.cells == _expected(report)
            rows = _Rows("processed")
            rows.feed((tmp_path / "report.html").read_text())
            picked = [p["source"] for p in report["selected"]]
            numbers = ("frames", "frames_embedded", "frames_from_cache")
            assert [r for r in rows.rows if r] == [
                [f["path"], *(str(f.get(k) or 0) for k in numbers), str(picked.count(f["path"]))]
                for f in report["files"]["processed"]
            ]
            # The pool holds the same report.json, written before the run's state was set.
            stored = json.loads(
                (datasets.pool(datasets.two_runs) / "reports" / run_id / "report.json").read_text()
            )
            assert stored == {k: v for k, v in report.items() if k != "state"}


def test_the_report_renders_its_figures_and_every_pick_in_chromium(
    datasets: Datasets, browser: Browser, tmp_path: Path
) -> None:
    run_id, report = datasets.runs[1]
    with datasets.client(datasets.two_runs) as client:
        client.download_compute_worker_run_report_html(run_id, tmp_path / "report.html")
    errors: list[str] = []
    page = watched_page(browser, errors)
    page.goto((tmp_path / "report.html").as_uri())
    for figure in ("summary", "view", "density"):
        assert page.evaluate(f"document.querySelector('#fig-{figure}').naturalWidth") > 0
    captions = page.eval_on_selector_all("#picks img", "imgs => imgs.map(i => [i.alt, i.naturalWidth > 0])")
    assert captions == [[p["frame_name"], True] for p in report["selected"]]
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert errors == []
    page.close()


def test_a_report_missing_from_the_pool_is_not_found_naming_its_key(
    datasets: Datasets, tmp_path: Path
) -> None:
    with datasets.client(datasets.one_frame) as client:
        run_id = next(t.run_id for t in client.get_all_tags() if t.run_id)
        client.download_compute_worker_run_report_html(run_id, tmp_path / "report.html")  # written
        (datasets.pool(datasets.one_frame) / "reports" / run_id / "report.html").unlink()
        with pytest.raises(ApiError) as refused:
            client.download_compute_worker_run_report_html(run_id, "unused.html")
    assert refused.value.code == grpc.StatusCode.NOT_FOUND
    assert f"reports/{run_id}/report.html" in refused.value.message


def test_garbage_collection_leaves_the_reports_alone(datasets: Datasets, tmp_path: Path) -> None:
    run_id, _ = datasets.runs[0]
    pool = datasets.pool(datasets.two_runs)
    with datasets.client(datasets.two_runs) as client:
        client.download_compute_worker_run_report_html(run_id, tmp_path / "before.html")  # written
    collect_garbage(LocalStore(str(pool)), min_age_s=0)
    assert (pool / "reports" / run_id / "report.html").read_bytes() == (tmp_path / "before.html").read_bytes()
    assert (pool / "reports" / run_id / "report.json").exists()
