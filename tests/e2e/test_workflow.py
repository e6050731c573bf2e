"""The README's three-run workflow through a real `datapool up`, on generated videos."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from e2e_support import (
    RunningStack,
    min_cross_distance,
    min_pairwise_distance,
    pool_embeddings,
    processed_paths,
    run,
    selection,
    tag_names,
)

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.samples import make_corrupt_file, make_video

pytestmark = pytest.mark.e2e
FRAMES = 24
TOL = 1e-5


def test_three_run_workflow(stack: RunningStack, tmp_path: Path) -> None:
    videos = tmp_path / "bucket" / "input" / "videos"
    pool = tmp_path / "bucket" / "lightly"
    videos.mkdir(parents=True)
    for i in range(3):
        make_video(videos / f"campus{i}-c0.mp4", scene_seed=i, n_frames=FRAMES)
    make_corrupt_file(videos / "broken.mp4", kind="random")
    make_corrupt_file(videos / "cut.mp4", kind="truncated")
    make_corrupt_file(videos / "empty.mp4", kind="empty")
    (videos / "notes.txt").write_text("not a video")

    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name="pedestrian-videos-datapool", dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
    client.set_dataset_id_by_name(dataset_name="pedestrian-videos-datapool")

    # Run 1: three videos, 0.1.
    run1, report1 = run(client, {"enable_training": False}, selection(0.1))
    assert processed_paths(report1) == {f"campus{i}-c0.mp4" for i in range(3)}
    skipped = {s["path"]: s["reason"] for s in report1["files"]["skipped"]}
    assert {"broken.mp4", "empty.mp4", "notes.txt"} <= set(skipped)
    assert all(reason for reason in skipped.values())
    assert report1["frames"]["decoded"] == 3 * FRAMES
    assert report1["frames"]["embedded"] == 3 * FRAMES
    assert 0 < report1["frames"]["selected"] <= 100
    for stage in ("list_and_diff", "embed", "select", "render", "commit", "total"):
        assert stage in report1["seconds"]
    emb1 = pool_embeddings(client, tmp_path)
    assert len(emb1) == report1["frames"]["selected"]
    assert min_pairwise_distance(np.stack(list(emb1.values()))) >= 0.1 - TOL
    name_re = re.compile(r"^campus[0-2]-c0-\d{2}-mp4\.png$")
    assert all(name_re.match(n) for n in emb1), sorted(emb1)
    pngs = {p.name for p in (pool / "frames").rglob("*.png")}
    assert set(emb1) <= pngs
    tags1 = client.get_compute_worker_run_tags(run1)
    assert len(tags1) == 1

    # Run 2: two more videos, 0.2; only they are decoded.
    for i in (3, 4):
        make_video(videos / f"campus{i}-c0.mp4", scene_seed=i, n_frames=FRAMES)
    run2, report2 = run(client, {"enable_training": False}, selection(0.2))
    assert processed_paths(report2) == {"campus3-c0.mp4", "campus4-c0.mp4"}
    assert report2["frames"]["decoded"] == 2 * FRAMES
    emb2 = pool_embeddings(client, tmp_path)
    tag2 = client.get_compute_worker_run_tags(run2)
    assert len(tag2) == 1
    new2 = tag_names(client, tag2[0].name)
    assert len(new2) == report2["frames"]["selected"] > 0
    assert set(emb2) == set(emb1) | set(new2)
    new_vecs = np.stack([emb2[n] for n in new2])
    old_vecs = np.stack(list(emb1.values()))
    assert min_cross_distance(new_vecs, old_vecs) >= 0.2 - TOL
    assert min_pairwise_distance(new_vecs) >= 0.2 - TOL

    # Run 3: process_all re-examines every video; picks still keep 0.2 from the whole pool.
    run3, report3 = run(
        client, {"enable_training": False, "datasource": {"process_all": True}}, selection(0.2)
    )
    assert processed_paths(report3) == {f"campus{i}-c0.mp4" for i in range(5)}
    emb3 = pool_embeddings(client, tmp_path)
    new3 = [n for n in emb3 if n not in emb2]
    assert len(new3) == report3["frames"]["selected"]
    if new3:
        v3 = np.stack([emb3[n] for n in new3])
        assert min_cross_distance(v3, np.stack(list(emb2.values()))) >= 0.2 - TOL
        assert min_pairwise_distance(v3) >= 0.2 - TOL

    tags = client.get_all_tags()
    names = [t.name for t in tags]
    assert names[-1] == "initial-tag"
    expected = [t.name for r in (run3, run2, run1) for t in client.get_compute_worker_run_tags(r)]
    assert names[:-1] == [n for n in expected if n]
    assert tags[-1].frame_count == len(emb3)
    assert sorted(tag_names(client, "initial-tag")) == sorted(emb3)


def test_image_dataset(stack: RunningStack, tmp_path: Path) -> None:
    from datapool.samples import make_image

    images, pool = tmp_path / "images", tmp_path / "pool"
    (images / "sub").mkdir(parents=True)
    for i in range(6):
        make_image(images / "sub" / f"img{i}.jpg", scene_seed=100 + i)
    make_video(images / "clip.mp4", scene_seed=1, n_frames=4)
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=f"images-{tmp_path.name}", dataset_type=DatasetType.IMAGES)
    client.set_local_config(resource_path=str(images), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
    _, report = run(client, {}, selection(0.05, n=4))
    assert processed_paths(report) == {f"sub/img{i}.jpg" for i in range(6)}
    skipped = [{"path": "clip.mp4", "reason": "not an image file (extension .mp4)"}]
    assert report["files"]["skipped"] == skipped
    names = tag_names(client, "initial-tag")
    assert len(names) == 4
    assert all(re.fullmatch(r"sub/img[0-5]-jpg\.png", n) for n in names), names
