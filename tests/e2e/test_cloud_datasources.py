"""The README's three-run workflow on S3 (keys and delegated role), GCS and Azure emulators, through a
real `datapool up`; bad cloud input; and no credential anywhere on disk, in logs, reports or the pool."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from datasource_setup import set_location
from e2e_support import (
    RunningStack,
    min_cross_distance,
    min_pairwise_distance,
    pool_embeddings,
    processed_paths,
    run,
    running_stack,
    selection,
    tag_names,
    wait_end,
)

from datapool import ApiError, ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.samples import make_video
from datapool.storage import open_store
from datapool.v1 import common_pb2
from services.common.secrets import secret_values

pytestmark = pytest.mark.e2e
FRAMES = 12
TOL = 1e-5
TOKEN = "cloud-e2e-token"


@pytest.fixture(scope="module")
def cloud_stack(
    tmp_path_factory: pytest.TempPathFactory, emulator_env: dict[str, str]
) -> Iterator[RunningStack]:
    """Its own stack: the services need the emulator's AWS chain (for "s3-role") in their environment."""
    saved = {
        k: os.environ.pop(k) for k in ("DATAPOOL_SECRET_KEY", "DATAPOOL_SECRET_KEY_FILE") if k in os.environ
    }
    try:
        with running_stack(tmp_path_factory.mktemp("cloud-stack"), TOKEN, emulator_env) as running:
            yield running
    finally:
        os.environ.update(saved)


def upload_videos(location: common_pb2.StoreLocation, tmp: Path, seeds: list[int]) -> None:
    store = open_store(location)
    for seed in seeds:
        path = make_video(tmp / f"campus{seed}-c0.mp4", scene_seed=seed, n_frames=FRAMES)
        store.put(f"campus{seed}-c0.mp4", path.read_bytes())


def new_client(stack: RunningStack, name: str) -> ApiWorkflowClient:
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=name, dataset_type=DatasetType.VIDEOS)
    return client


def assert_no_secret(secrets: list[str], blobs: dict[str, bytes]) -> None:
    for where, data in blobs.items():
        for secret in secrets:
            assert secret.encode() not in data, f"a credential is in {where}"


def pool_objects(location: common_pb2.StoreLocation) -> dict[str, bytes]:
    store = open_store(location)
    return {f"pool:{o.key}": store.read(o.key) for o in store.list()}


def state_files(stack: RunningStack) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes() for p in stack.state_dir.rglob("*") if p.is_file() and p.name != "secret.key"
    }


@pytest.mark.parametrize("kind", ["s3", "s3-role", "gcs", "azure"])
def test_three_run_workflow_on_cloud(
    cloud_stack: RunningStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    tmp_path: Path,
    kind: str,
) -> None:
    inp = make_location(kind, "input/videos/")
    pool = make_location(kind, "lightly/")
    upload_videos(inp, tmp_path, [0, 1, 2])
    open_store(inp).put("notes.txt", b"not a video")

    client = new_client(cloud_stack, f"cloud-{kind}-{tmp_path.name}")
    set_location(client, inp, DatasourcePurpose.INPUT)
    set_location(client, pool, DatasourcePurpose.LIGHTLY)

    run1, report1 = run(client, {}, selection(0.1))
    assert processed_paths(report1) == {f"campus{i}-c0.mp4" for i in range(3)}
    assert {s["path"] for s in report1["files"]["skipped"]} == {"notes.txt"}
    assert report1["frames"]["decoded"] == 3 * FRAMES
    emb1 = pool_embeddings(client, tmp_path)
    assert len(emb1) == report1["frames"]["selected"] > 0
    assert min_pairwise_distance(np.stack(list(emb1.values()))) >= 0.1 - TOL
    pngs = {k.rsplit("/", 1)[-1] for k in pool_objects(pool) if k.endswith(".png")}
    assert set(emb1) <= pngs
    assert len(client.get_compute_worker_run_tags(run1)) == 1

    upload_videos(inp, tmp_path, [3, 4])
    run2, report2 = run(client, {}, selection(0.2))
    assert processed_paths(report2) == {"campus3-c0.mp4", "campus4-c0.mp4"}
    assert report2["frames"]["decoded"] == 2 * FRAMES
    emb2 = pool_embeddings(client, tmp_path)
    tag2 = client.get_compute_worker_run_tags(run2)
    new2 = tag_names(client, tag2[0].name) if tag2 else []
    assert len(new2) == report2["frames"]["selected"]
    assert set(emb2) == set(emb1) | set(new2)
    if new2:
        new_vecs = np.stack([emb2[n] for n in new2])
        assert min_cross_distance(new_vecs, np.stack(list(emb1.values()))) >= 0.2 - TOL
        assert min_pairwise_distance(new_vecs) >= 0.2 - TOL

    run3, report3 = run(client, {"datasource": {"process_all": True}}, selection(0.2))
    assert processed_paths(report3) == {f"campus{i}-c0.mp4" for i in range(5)}
    emb3 = pool_embeddings(client, tmp_path)
    new3 = [n for n in emb3 if n not in emb2]
    if new3:
        v3 = np.stack([emb3[n] for n in new3])
        assert min_cross_distance(v3, np.stack(list(emb2.values()))) >= 0.2 - TOL
    names = [t.name for t in client.get_all_tags()]
    assert names[-1] == "initial-tag"

    secrets = secret_values(inp) + secret_values(pool)
    reports = {
        f"report {r}": str(client.download_compute_worker_run_report_json(r)).encode()
        for r in (run1, run2, run3)
    }
    assert_no_secret(secrets, {**reports, **state_files(cloud_stack), **pool_objects(pool)})


def test_missing_bucket_and_wrong_credentials_are_refused(
    cloud_stack: RunningStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    emulators: Any,
    tmp_path: Path,
) -> None:
    client = new_client(cloud_stack, f"refused-{tmp_path.name}")
    real = make_location("s3")
    missing = common_pb2.StoreLocation()
    missing.CopyFrom(real)
    missing.s3.bucket = "datapool-no-such-bucket"
    with pytest.raises(ApiError) as err:
        set_location(client, missing, DatasourcePurpose.INPUT)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "datapool-no-such-bucket" in err.value.message

    wrong = common_pb2.StoreLocation()
    wrong.CopyFrom(real)
    wrong.s3.access_key.secret_access_key = "wrong-secret-0123456789"
    with pytest.raises(ApiError) as err:
        set_location(client, wrong, DatasourcePurpose.LIGHTLY)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "wrong-secret-0123456789" not in err.value.message
    assert real.s3.bucket in err.value.message

    azure = make_location("azure")
    read_only = common_pb2.StoreLocation()
    read_only.CopyFrom(azure)
    read_only.azure.sas_token = emulators.azure_sas(azure.azure.container, "rl")
    with pytest.raises(ApiError) as err:
        set_location(client, read_only, DatasourcePurpose.LIGHTLY)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "write" in err.value.message and azure.azure.container in err.value.message


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_prefix_without_videos_completes_with_no_new_files(
    cloud_stack: RunningStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    tmp_path: Path,
    kind: str,
) -> None:
    inp, pool = make_location(kind, "empty/"), make_location(kind, "pool/")
    store = open_store(inp)
    store.put("readme.md", b"no videos here")
    client = new_client(cloud_stack, f"novideo-{kind}-{tmp_path.name}")
    set_location(client, inp, DatasourcePurpose.INPUT)
    set_location(client, pool, DatasourcePurpose.LIGHTLY)
    run_id, report = run(client, {}, selection(0.1))
    info = client.get_compute_worker_run_info(run_id)
    assert info.message.startswith("no new files")
    assert "has no video files" in report["files"]["note"]
    assert report["files"]["skipped"] == [{"path": "readme.md", "reason": "not a video file (extension .md)"}]


def test_access_lost_after_setting_fails_the_run_at_start(
    cloud_stack: RunningStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    emulators: Any,
    tmp_path: Path,
) -> None:
    inp, pool = make_location("azure", "in/"), make_location("azure", "pool/")
    upload_videos(inp, tmp_path, [7])
    read_only = common_pb2.StoreLocation()
    read_only.CopyFrom(pool)
    read_only.azure.sas_token = emulators.azure_sas(pool.azure.container, "rl")
    client = new_client(cloud_stack, f"lost-{tmp_path.name}")
    set_location(client, inp, DatasourcePurpose.INPUT)
    set_location(client, read_only, DatasourcePurpose.LIGHTLY, bypass_verify=True)
    run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=selection(0.1))
    for _ in client.compute_worker_run_info_generator(run_id):
        pass
    info = client.get_compute_worker_run_info(run_id)
    assert info.state == "FAILED"
    assert "LIGHTLY datasource failed its access check at run start" in info.message
    assert "write" in info.message and "bypass_verify" in info.message
    report = client.download_compute_worker_run_report_json(run_id)
    assert "frames" not in report  # nothing was embedded
    assert [k for k in pool_objects(pool) if not k.startswith("pool:.datapool/access-check")] == []


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_runs_survive_a_flaky_network(
    cloud_stack: RunningStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    tmp_path: Path,
    kind: str,
) -> None:
    """Every service reaches the store through a proxy that drops, resets and delays connections:
    a run completes through the SDKs' retries or fails with a clear message, and nothing is lost."""
    from urllib.parse import urlsplit

    from flaky_proxy import Faults, FlakyProxy

    inp = make_location(kind, "input/videos/")
    pool = make_location(kind, "lightly/")
    upload_videos(inp, tmp_path, [1, 2, 3])
    upstream = urlsplit(getattr(inp, kind).endpoint_url).port
    assert upstream is not None
    with FlakyProxy(upstream, seed=7) as proxy:
        for loc in (inp, pool):
            part = getattr(loc, kind)
            part.endpoint_url = proxy.rewrite(part.endpoint_url)
        client = new_client(cloud_stack, f"flaky-{kind}-{tmp_path.name}")
        set_location(client, inp, DatasourcePurpose.INPUT)
        set_location(client, pool, DatasourcePurpose.LIGHTLY)
        proxy.inject(Faults(drop=0.05, reset=0.05, delay=0.2, max_drops=3, max_resets=3, max_delays=500))
        first = wait_end(client, client.schedule_compute_worker_run({}, selection(0.1, 20)))
        assert proxy.stats.drops + proxy.stats.resets > 0, "no fault was injected"
        proxy.heal()
        if not first.ended_successfully():
            # A clear message, never a bare stack trace; then a retry on a healthy network succeeds.
            assert "Traceback" not in first.message and first.message, first.message
            again = wait_end(client, client.schedule_compute_worker_run({}, selection(0.1, 20)))
            assert again.ended_successfully(), again.message
        emb = pool_embeddings(client, tmp_path)  # asserts no frame is pooled twice
        assert emb
        assert min_pairwise_distance(np.stack(list(emb.values()))) >= 0.1 - TOL
        assert sorted(tag_names(client, "initial-tag")) == sorted(emb)
        print(f"\n{kind} through the proxy: first run {first.state} ({first.message}); {proxy.stats}")
