"""A real stack with datasets in known states, the view served from it, and Debian's chromium.

The stack is `datapool.stack.Stack` (three service processes) with a user token and TLS; the view is
`datapool view`'s app served by uvicorn in a thread; the browser is /usr/bin/chromium driven by
Playwright (never a downloaded browser). WebGL runs on SwiftShader, chromium's CPU renderer.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.ports import free_port
from datapool.samples import make_video

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
TOKEN = "view-test-token"
FRAMES = 12


@dataclass
class Datasets:
    """Datasets of the shared stack: `two_runs` (run ids and reports in run order), `one_frame`,
    `no_pool` (no LIGHTLY datasource), `empty_pool` (a LIGHTLY datasource, no run yet)."""

    address: str
    root: Path
    # The stack serves TLS: every client and the view trust this CA certificate.
    ca_cert: Path
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    two_runs: str = "two-runs"
    one_frame: str = "one-frame"
    no_pool: str = "no-pool"
    empty_pool: str = "empty-pool"

    def client(self, dataset: str) -> ApiWorkflowClient:
        client = ApiWorkflowClient(token=TOKEN, address=self.address, ca_cert=self.ca_cert)
        client.set_dataset_id_by_name(dataset)
        return client

    def pool(self, dataset: str) -> Path:
        return self.root / dataset / "pool"


def selection(n: int, min_distance: float) -> dict[str, Any]:
    strategy = {"type": "DIVERSITY", "stopping_condition_minimum_distance": min_distance}
    return {"n_samples": n, "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": strategy}]}


def run_once(client: ApiWorkflowClient, n: int, min_distance: float) -> tuple[str, dict[str, Any]]:
    run_id = client.schedule_compute_worker_run({"enable_training": False}, selection(n, min_distance))
    for _ in client.compute_worker_run_info_generator(run_id):
        pass
    info = client.get_compute_worker_run_info(run_id)
    assert info.ended_successfully(), info.message
    return run_id, client.download_compute_worker_run_report_json(run_id)


def make_dataset(data: Datasets, name: str, videos: int, with_pool: bool = True) -> ApiWorkflowClient:
    client = ApiWorkflowClient(token=TOKEN, address=data.address, ca_cert=data.ca_cert)
    client.create_dataset(dataset_name=name, dataset_type=DatasetType.VIDEOS)
    folder = data.root / name / "videos"
    folder.mkdir(parents=True)
    for i in range(videos):
        make_video(folder / f"{name}-{i}.mp4", scene_seed=i, n_frames=FRAMES)
    client.set_local_config(resource_path=str(folder), purpose=DatasourcePurpose.INPUT)
    if with_pool:
        client.set_local_config(resource_path=str(data.pool(name)), purpose=DatasourcePurpose.LIGHTLY)
    return client


def fill(data: Datasets) -> None:
    with make_dataset(data, data.two_runs, videos=2) as client:
        data.runs.append(run_once(client, 10, 0.0))
        for i in range(2, 4):
            make_video(data.root / data.two_runs / "videos" / f"more-{i}.mp4", scene_seed=i, n_frames=FRAMES)
        data.runs.append(run_once(client, 6, 0.0))
    with make_dataset(data, data.one_frame, videos=1) as client:
        run_once(client, 1, 0.0)
    make_dataset(data, data.no_pool, videos=1, with_pool=False).close()
    make_dataset(data, data.empty_pool, videos=1).close()


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the view server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def get_json(url: str) -> Any:
    status, body = get(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def launch(playwright: Playwright) -> Browser:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup.sh does)"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def watched_page(browser: Browser, errors: list[str]) -> Page:
    """A page whose console errors and uncaught exceptions land in `errors`."""
    page = browser.new_page(viewport={"width": 1200, "height": 800})

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page
