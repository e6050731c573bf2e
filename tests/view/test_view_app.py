"""`datapool view` in a real browser against a real stack: points per tag after two runs,
hover, legend, no console errors; the pages for bad input; read-only routes."""

from __future__ import annotations

import csv
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser
from view_support import Datasets, get, get_json, watched_page

from datapool.view.app import create_app
from datapool.view.grpc_source import GrpcViewSource

READY_MS = 60_000
THUMBNAIL_SHOWN = "(() => { const i = document.querySelector('#tip img'); return i && i.naturalWidth > 0 })()"


def test_the_page_draws_the_points_of_each_tag_after_two_runs(
    datasets: Datasets, view_url: str, browser: Browser, tmp_path: Path
) -> None:
    with datasets.client(datasets.two_runs) as client:
        tags = {t.name: t.frame_count for t in client.get_all_tags()}
    embedded = sum(report["frames"]["embedded"] for _, report in datasets.runs)
    pooled = tags["initial-tag"]
    errors: list[str] = []
    page = watched_page(browser, errors)
    page.goto(f"{view_url}/datasets/{datasets.two_runs}")
    page.wait_for_selector("#plot[data-ready=true]", timeout=READY_MS)

    assert page.get_attribute("#plot", "data-points") == str(embedded)
    legend = {
        li.get_attribute("data-tag"): int(li.get_attribute("data-count") or -1)
        for li in page.query_selector_all("#legend li")
    }
    assert legend == {**tags, "embedded-not-pooled": embedded - pooled}
    assert [r[1]["tag"] for r in datasets.runs] == list(legend)[:2]  # run order

    shot = tmp_path / "view.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # Hiding the first run's tag hides exactly its points.
    page.click(f"#legend li[data-tag='{datasets.runs[0][1]['tag']}']")
    first = tags[datasets.runs[0][1]["tag"]]
    page.wait_for_function(f"document.querySelector('#plot').dataset.points === '{embedded - first}'")
    assert errors == []
    page.close()


def test_hovering_a_pooled_point_shows_its_thumbnail_and_details(
    datasets: Datasets, view_url: str, browser: Browser
) -> None:
    errors: list[str] = []
    page = watched_page(browser, errors)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{view_url}/datasets/{datasets.two_runs}")
    page.wait_for_selector("#plot[data-ready=true]", timeout=READY_MS)
    page.evaluate("window.datapoolView.hover(0)")
    page.wait_for_function(THUMBNAIL_SHOWN)
    text = page.inner_text("#tip")
    info = get_json(f"{view_url}/api/datasets/{datasets.two_runs}/points/0")
    for value in (info["name"], info["video"], info["tag"], str(info["nearest_pool_distance"])):
        assert value in text
    assert f"frame: {info['frame_index']}" in text
    # A click on the hovered point opens its full frame.
    with page.expect_popup() as opened:
        page.dispatch_event("#canvas", "click")
    assert opened.value.url == f"{view_url}{info['frame']}"
    opened.value.close()
    assert errors == []
    # No CDN: the page, its script, the points and the thumbnail all come from the view itself.
    assert requested and all(url.startswith(f"{view_url}/") for url in requested), requested
    page.close()


class _Legend(HTMLParser):
    """The `data-tag` entries of the served page's legend: tag -> data-count."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and a.get("data-tag") is not None:
            self.counts[str(a["data-tag"])] = int(a.get("data-count") or -1)


def test_the_served_page_carries_its_legend_for_scripts_that_run_no_javascript(
    datasets: Datasets, view_url: str
) -> None:
    with datasets.client(datasets.two_runs) as client:
        tags = {t.name: t.frame_count for t in client.get_all_tags()}
    meta = get_json(f"{view_url}/api/datasets/{datasets.two_runs}/meta")
    status, body = get(f"{view_url}/datasets/{datasets.two_runs}")
    assert status == 200
    parser = _Legend()
    parser.feed(body.decode())
    assert parser.counts == {**tags, "embedded-not-pooled": meta["total"] - tags["initial-tag"]}
    assert [r[1]["tag"] for r in datasets.runs] == list(parser.counts)[:2]  # run order


def test_a_points_details_name_its_nearest_pool_neighbour_from_the_pools_embeddings(
    datasets: Datasets, view_url: str, tmp_path: Path
) -> None:
    with datasets.client(datasets.two_runs) as client:
        client.download_embeddings_csv(tmp_path / "pool.csv")
    with open(tmp_path / "pool.csv") as f:
        rows = list(csv.reader(f))[1:]
    names = [r[0] for r in rows]
    pool = np.array([[float(x) for x in r[1:-1]] for r in rows])
    for i in (0, len(names) - 1):  # the first and the last pooled point
        info = get_json(f"{view_url}/api/datasets/{datasets.two_runs}/points/{i}")
        me = names.index(info["name"])
        d = np.linalg.norm(pool - pool[me], axis=1)
        d[me] = np.inf
        assert abs(info["nearest_pool_distance"] - d.min()) < 1e-3
    total = get_json(f"{view_url}/api/datasets/{datasets.two_runs}/meta")["total"]
    faint = get_json(f"{view_url}/api/datasets/{datasets.two_runs}/points/{total - 1}")
    assert faint["name"] == "" and faint["tag"] == "" and faint["thumbnail"] is None
    assert faint["nearest_pool_distance"] > 0


def test_a_click_opens_the_pooled_png_itself(datasets: Datasets, view_url: str) -> None:
    info = get_json(f"{view_url}/api/datasets/{datasets.two_runs}/points/0")
    status, body = get(f"{view_url}{info['frame']}")
    assert status == 200
    run_id = next(r for r, rep in datasets.runs if rep["tag"] == info["tag"])
    assert body == (datasets.pool(datasets.two_runs) / "frames" / run_id / info["name"]).read_bytes()


def test_an_unknown_projection_is_refused_naming_the_parameter(datasets: Datasets, view_url: str) -> None:
    status, body = get(f"{view_url}/api/datasets/{datasets.two_runs}/points.bin?method=isomap")
    assert status == 400
    assert "method must be one of pca, umap, tsne, got 'isomap'" in body.decode()


def test_an_unknown_dataset_gets_a_404_page_naming_it(view_url: str) -> None:
    status, body = get(f"{view_url}/datasets/no-such-dataset")
    assert status == 404
    assert "no-such-dataset" in body.decode() and "not found" in body.decode()


def test_a_dataset_without_a_pool_gets_a_page_saying_so(datasets: Datasets, view_url: str) -> None:
    for name in (datasets.no_pool, datasets.empty_pool):
        status, body = get(f"{view_url}/datasets/{name}")
        assert status == 200
        assert f"dataset &#x27;{name}&#x27; has no pool yet" in body.decode()


def test_a_pool_of_one_frame_gets_a_page_saying_so(datasets: Datasets, view_url: str) -> None:
    status, body = get(f"{view_url}/datasets/{datasets.one_frame}")
    assert status == 200
    assert "holds one frame" in body.decode()


def test_no_route_of_the_view_can_change_anything(datasets: Datasets, view_url: str) -> None:
    app = create_app(GrpcViewSource(datasets.address, None))
    methods = {m for route in app.routes for m in getattr(route, "methods", set())}
    assert methods <= {"GET", "HEAD"}
    request = urllib.request.Request(f"{view_url}/datasets/{datasets.two_runs}", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 405
    refused.value.close()
