"""worker_config.output_image_format through a real `datapool up`: a jpg run writes JPEGs at
the jpg_quality asked, named `.jpg` in the pool's manifest and report.json as on disk, and
exports list those names; bad values are refused
before the run, naming the key."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from e2e_support import RunningStack, local_video_dataset, run, selection, tag_names
from PIL import Image

from datapool import ApiError, ApiWorkflowClient
from datapool.pool.repository import PoolRepository
from datapool.samples import make_video
from datapool.storage import LocalStore
from services.embedder.decode import FrameDecoder

pytestmark = pytest.mark.e2e


def dataset(stack: RunningStack, root: Path, name: str) -> tuple[ApiWorkflowClient, Path, Path]:
    videos, pool = root / "videos", root / "pool"
    make_video(videos / "cam.mp4", scene_seed=60, n_frames=20)
    return local_video_dataset(stack, name, videos, pool), videos, pool


def test_a_jpg_run_writes_jpegs_named_jpg(stack: RunningStack, tmp_path: Path) -> None:
    client, videos, pool = dataset(stack, tmp_path, f"jpg-{tmp_path.name}")
    _, report = run(client, {"output_image_format": "jpg", "jpg_quality": 80}, selection(0.0, n=4))
    assert report["config"]["worker_config"]["output_image_format"] == "jpg"
    with FrameDecoder(videos / "cam.mp4") as decoder:
        full = dict(decoder.frames())
    files = sorted(pool.glob("frames/*/*"))
    assert len(files) == 4 and all(f.suffix == ".jpg" for f in files), files
    # The frame's name is its file's: in report.json and in the pool manifest alike.
    assert sorted(p["frame_name"] for p in report["selected"]) == sorted(f.name for f in files)
    repo = PoolRepository(LocalStore(pool))
    pooled = repo.load_state(repo.newest_manifest())
    assert sorted(f.frame_name for f in pooled.frames) == sorted(f.name for f in files)
    assert sorted(f.key for f in pooled.frames) == sorted(f.relative_to(pool).as_posix() for f in files)
    for pick in report["selected"]:
        [jpg] = list(pool.glob(f"frames/*/{pick['frame_name']}"))
        image = Image.open(io.BytesIO(jpg.read_bytes()))
        assert image.format == "JPEG"
        error = np.abs(np.asarray(image.convert("RGB")).astype(int) - full[pick["frame_index"]]).mean()
        assert error < 6, error
    assert sorted(tag_names(client, "initial-tag")) == sorted(f.name for f in files)


@pytest.mark.parametrize(
    ("worker", "needle"),
    [
        ({"output_image_format": "gif"}, "worker_config.output_image_format: 'gif' is not supported"),
        ({"output_image_format": "jpg", "jpg_quality": 0}, "worker_config.jpg_quality"),
        ({"jpg_quality": "90"}, "worker_config.jpg_quality"),
    ],
)
def test_a_bad_image_format_is_refused_before_the_run(
    stack: RunningStack, tmp_path: Path, worker: dict[str, Any], needle: str
) -> None:
    client, _, pool = dataset(stack, tmp_path, f"bad-format-{tmp_path.name}")
    with pytest.raises(ApiError) as err:
        client.schedule_compute_worker_run(worker_config=worker, selection_config=selection(0.1))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.message
    assert not pool.exists() or not any(pool.glob("frames/*/*"))
