"""The view as the pool grows: a second run's frames are placed around the first run's points,
which stay where the first view drew them."""

from __future__ import annotations

import time

import numpy as np
from view_support import FRAMES, TOKEN, Datasets, get, get_json, make_dataset, run_once, serving

from datapool.samples import make_video
from datapool.view.app import create_app
from datapool.view.grpc_source import GrpcViewSource


def _places(url: str, dataset: str) -> dict[tuple[str, int], tuple[float, float]]:
    """(video, frame index) -> the point's (x, y), as the page gets them."""
    assert get(f"{url}/datasets/{dataset}")[0] == 200  # the page reads the pool's current version
    deadline = time.monotonic() + 120
    while (answer := get(f"{url}/api/datasets/{dataset}/points.bin?method=pca"))[0] == 202:
        assert time.monotonic() < deadline, "the projection took over 2 minutes"  # scikit-learn's import
    status, body = answer
    assert status == 200
    n = len(body) // 13
    xs, ys = np.frombuffer(body, np.float32, n), np.frombuffer(body, np.float32, n, 4 * n)
    rows = np.frombuffer(body, np.uint32, n, 8 * n)
    out = {}
    for x, y, row in zip(xs, ys, rows, strict=True):
        info = get_json(f"{url}/api/datasets/{dataset}/points/{row}")
        out[(info["video"], info["frame_index"])] = (float(x), float(y))
    return out


def test_a_second_runs_frames_leave_the_first_runs_points_where_they_were(datasets: Datasets) -> None:
    name = "grows"
    source = GrpcViewSource(datasets.address, TOKEN, datasets.ca_cert)
    app = create_app(source)
    with make_dataset(datasets, name, videos=2) as client, serving(app) as url:
        run_once(client, 6, 0.0)
        first = _places(url, name)
        for i in (2, 3):
            make_video(datasets.root / name / "videos" / f"more-{i}.mp4", scene_seed=i, n_frames=FRAMES)
        run_once(client, 6, 0.0)
        second = _places(url, name)
    source.close()
    assert len(first) == 2 * FRAMES and len(second) == 4 * FRAMES
    old = np.array([first[k] for k in first])
    again = np.array([second[k] for k in first])
    assert np.abs(again - old).max() < 1e-6
    # The second version was placed with the first version's fit, not fitted again.
    assert (app.state.projections.computed, app.state.projections.fitted) == (2, 1)
