"""Two whole stacks (scheduler, selector, embedder each) sharing one INPUT and one pool folder."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from commit_support import TOL
from datasource_setup import set_location
from pool_checks import check_manifests, min_pairwise_distance

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.pool.repository import PoolRepository
from datapool.ports import free_port
from datapool.samples import make_video
from datapool.stack import Stack
from datapool.storage import open_store
from datapool.v1 import common_pb2
from services.common.faults import ENV, held, hold, release

MIN_DISTANCE = 0.15
RUNS_PER_STACK = 2


HELD_STEP = "selector.commit.after_data"


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_two_schedulers_share_one_pool(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_location: Callable[..., common_pb2.StoreLocation],
    kind: str,
) -> None:
    videos = tmp_path / "videos"
    inp, pool = make_location(kind, "input/"), make_location(kind, "lightly/")
    fault_dir = tmp_path / "faults"
    # Both stacks' selectors see one fault folder, so the test can hold both commits
    # at the same step and let them go together: the race is certain, not likely.
    monkeypatch.setenv(ENV, str(fault_dir))
    hold(fault_dir, HELD_STEP)
    videos.mkdir()
    for i in range(4):
        path = make_video(videos / f"cam{i}.mp4", scene_seed=i, n_frames=12)
        open_store(inp).put(path.name, path.read_bytes())
    stacks = [Stack(tmp_path / f"state-{n}", port=free_port(), embedder_replicas=1) for n in range(2)]
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda s: s.start(), stacks))
    try:
        clients = [ApiWorkflowClient(address=s.address) for s in stacks]
        for c in clients:
            c.create_dataset(dataset_name="shared-pool", dataset_type=DatasetType.VIDEOS)
            set_location(c, inp, DatasourcePurpose.INPUT)
            set_location(c, pool, DatasourcePurpose.LIGHTLY)

        attempts: list[int] = []

        released = threading.Event()

        def release_when_both_wait() -> None:
            deadline = time.monotonic() + 120
            while held(fault_dir, HELD_STEP) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            release(fault_dir, HELD_STEP)
            released.set()

        threading.Thread(target=release_when_both_wait, daemon=True).start()

        def runs(client: ApiWorkflowClient) -> list[str]:
            tags = []
            for _ in range(RUNS_PER_STACK):
                run_id = client.schedule_compute_worker_run(
                    worker_config={"enable_training": False, "datasource": {"process_all": True}},
                    selection_config={
                        "n_samples": 6,
                        "strategies": [
                            {
                                "input": {"type": "EMBEDDINGS"},
                                "strategy": {
                                    "type": "DIVERSITY",
                                    "stopping_condition_minimum_distance": MIN_DISTANCE,
                                },
                            }
                        ],
                    },
                )
                for _ in client.compute_worker_run_info_generator(scheduled_run_id=run_id):
                    pass
                info = client.get_compute_worker_run_info(run_id)
                assert info.ended_successfully(), info.message
                run = client.get_compute_worker_run_from_scheduled_run(run_id)
                tags += [t.name for t in client.get_compute_worker_run_tags(run.id)]
                attempts.append(
                    int(client.download_compute_worker_run_report_json(run).get("commit_attempts", 0))
                )
            return tags

        with ThreadPoolExecutor(2) as ex:
            tags = [t for ts in ex.map(runs, clients) for t in ts]
        assert released.is_set() and held(fault_dir, HELD_STEP) >= 2, "the two commits were not held together"
        # Both first runs put manifest 1 at once: one of them lost, re-read the pool and
        # committed its redone selection at the next version.
        assert max(attempts) >= 2, attempts

        # Through either client: every frame once, all far enough apart, each tag's frames in the pool.
        for n, client in enumerate(clients):
            csv_path = tmp_path / f"emb-{n}.csv"
            client.download_embeddings_csv(str(csv_path))
            with open(csv_path) as f:
                rows = list(csv.reader(f))[1:]
            names = [r[0] for r in rows]
            assert len(names) == len(set(names)), "a frame is pooled twice"
            vectors = np.array([[float(x) for x in r[1:-1]] for r in rows], dtype=np.float32)
            assert min_pairwise_distance(vectors) >= MIN_DISTANCE - TOL
            tagged = [x for tag in tags for x in client.export_filenames_by_tag_name(tag).split("\n") if x]
            assert sorted(tagged) == sorted(names)
        # And straight from the manifests: contiguous, cumulative, nothing missing.
        manifests = check_manifests(PoolRepository(open_store(pool)))
        assert sorted(s.tag for s in manifests[-1].segments if s.tag) == sorted(tags)
        assert len(manifests) == 2 * RUNS_PER_STACK
        print(f"\ntwo stacks on {kind}: {len(manifests)} commits, manifest puts per run {attempts}")
        for c in clients:
            c.close()
    finally:
        for s in stacks:
            s.stop()
