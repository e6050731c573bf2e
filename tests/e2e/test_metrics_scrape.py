"""Each service's Prometheus metrics, scraped from a real `datapool up` around two runs.

`datapool up` serves every service's /metrics on a port of its own and records the URLs in
STATE_DIR/metrics.json; the counters must move by exactly what the runs did.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from e2e_support import RunningStack, run, selection
from prometheus_client.parser import text_string_to_metric_families

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.samples import make_video
from datapool.stack import METRICS_FILE

pytestmark = pytest.mark.e2e
FILES, FRAMES, PICKS = 2, 10, 4
SERVICES = ("scheduler", "selector", "embedder-0")
Scrape = dict[str, dict[frozenset[tuple[str, str]], float]]


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: Scrape = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name][frozenset(s.labels.items())] = s.value
    return samples


def total(samples: Scrape, name: str, **labels: str) -> float:
    """The sum of `name` over the series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for key, v in samples.get(name, {}).items() if wanted <= key)


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def test_the_counters_of_every_service_move_with_the_runs(stack: RunningStack, tmp_path: Path) -> None:
    urls: dict[str, str] = json.loads((stack.state_dir / METRICS_FILE).read_text())
    assert sorted(urls) == sorted(SERVICES)
    assert any("Prometheus metrics on" in line and urls["selector"] in line for line in stack.output)
    before = {name: scrape(url) for name, url in urls.items()}

    videos, pool = tmp_path / "videos", tmp_path / "pool"
    videos.mkdir()
    for i in range(FILES):
        make_video(videos / f"cam{i}.mp4", scene_seed=i, n_frames=FRAMES)
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name="metrics-scrape", dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
    _, first = run(client, {"enable_training": False}, selection(0.0, n=PICKS))
    # The same files again: their vectors come from the embedding cache.
    _, second = run(client, {"datasource": {"process_all": True}}, selection(0.0, n=PICKS))
    assert first["frames"]["embedded"] == FILES * FRAMES and second["frames"]["embedded"] == 0
    after = {name: scrape(url) for name, url in urls.items()}

    s0, s1 = before["scheduler"], after["scheduler"]
    assert (
        moved(s0, s1, "datapool_rpc_requests_total", method="/datapool.v1.Scheduler/ScheduleRun", code="OK")
        == 2
    )
    assert (
        moved(s0, s1, "datapool_rpc_duration_seconds_count", method="/datapool.v1.Scheduler/ScheduleRun") == 2
    )
    assert moved(s0, s1, "datapool_runs_total", state="COMPLETED") == 2
    assert moved(s0, s1, "datapool_runs_total", state="EMBEDDING") == 2
    assert total(s1, "datapool_runs_active") == 0
    assert (
        moved(s0, s1, "datapool_storage_request_duration_seconds_count", store="local", operation="list") >= 2
    )

    e0, e1 = before["embedder-0"], after["embedder-0"]
    assert moved(e0, e1, "datapool_embedder_frames_embedded_total") == FILES * FRAMES
    assert moved(e0, e1, "datapool_embedder_frames_decoded_total") == FILES * FRAMES
    assert (
        moved(e0, e1, "datapool_rpc_requests_total", method="/datapool.v1.Embedder/EmbedFile", code="OK")
        == FILES
    )
    assert total(e1, "datapool_embedder_busy_ratio") > 0
    assert total(e1, "datapool_embedder_queue_depth") == 0
    assert total(e1, "datapool_embedder_backend_info", default="true") == 1

    p0, p1 = before["selector"], after["selector"]
    assert moved(p0, p1, "datapool_rpc_requests_total", method="/datapool.v1.Selector/Commit", code="OK") == 2
    assert moved(p0, p1, "datapool_selector_selection_seconds_count") == 2
    assert moved(p0, p1, "datapool_selector_selection_seconds_sum") > 0
    assert (
        moved(p0, p1, "datapool_selector_frames_selected_total")
        == first["frames"]["selected"] + (second["frames"]["selected"])
    )
    assert moved(p0, p1, "datapool_selector_commits_total") == 2
    assert moved(p0, p1, "datapool_selector_commit_lost_races_total") == 0
    assert moved(p0, p1, "datapool_embedding_cache_misses_total") == FILES
    assert moved(p0, p1, "datapool_embedding_cache_hits_total") == FILES
    assert (
        moved(
            p0,
            p1,
            "datapool_storage_request_duration_seconds_count",
            store="local",
            operation="put_if_absent",
        )
        >= 1
    )

    # Every name the Grafana dashboard queries is among what the three services serve.
    board = (Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "datapool.json").read_text()
    served = {name for scraped in after.values() for name in scraped}
    queried = set(re.findall(r"\b((?:datapool|process)_[a-z0-9_]+)\b", board))
    assert queried <= served, sorted(queried - served)
