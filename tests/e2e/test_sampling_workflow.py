"""Frame sampling through a real `datapool up`: picks keep their index in the whole video,
their PNG is that very frame, the report tells frames in the videos from frames embedded,
and a bad rule is refused before any run starts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from e2e_support import RunningStack, local_video_dataset, run, selection
from PIL import Image

from datapool import ApiError, ApiWorkflowClient
from datapool.samples import make_video
from services.embedder.decode import FrameDecoder

pytestmark = pytest.mark.e2e
FRAMES = 23  # names pad indices to 2 digits
EVERY = 5


def dataset(stack: RunningStack, root: Path, name: str) -> tuple[ApiWorkflowClient, Path, Path]:
    videos, pool = root / "videos", root / "pool"
    for i in range(2):
        make_video(videos / f"cam{i}.mp4", scene_seed=40 + i, n_frames=FRAMES)
    return local_video_dataset(stack, name, videos, pool), videos, pool


def test_sampled_picks_keep_their_frame_and_picture(stack: RunningStack, tmp_path: Path) -> None:
    client, videos, pool = dataset(stack, tmp_path, f"sampled-{tmp_path.name}")
    _, report = run(client, {"frame_sampling": {"every_nth": EVERY}}, selection(0.0, n=6))
    kept = len(range(0, FRAMES, EVERY))
    processed = {f["path"]: f for f in report["files"]["processed"]}
    assert {p: (f["frames"], f["frames_embedded"]) for p, f in processed.items()} == {
        "cam0.mp4": (FRAMES, kept),
        "cam1.mp4": (FRAMES, kept),
    }
    assert report["frames"]["decoded"] == 2 * FRAMES
    assert report["frames"]["embedded"] == 2 * kept
    assert report["config"]["worker_config"]["frame_sampling"] == {"every_nth": EVERY, "target_fps": None}
    selected: list[dict[str, Any]] = report["selected"]
    assert len(selected) == 6
    full = {}
    for name in ("cam0.mp4", "cam1.mp4"):
        with FrameDecoder(videos / name) as decoder:
            full[name] = dict(decoder.frames())
    for pick in selected:
        index = pick["frame_index"]
        assert index % EVERY == 0
        assert pick["frame_name"] == f"{pick['source'][:-4]}-{index:02d}-mp4.png"
        [png] = list(pool.glob(f"frames/*/{pick['frame_name']}"))
        picture = np.asarray(Image.open(io.BytesIO(png.read_bytes())).convert("RGB"))
        np.testing.assert_array_equal(picture, full[pick["source"]][index])


@pytest.mark.parametrize(
    ("frame_sampling", "needle"),
    [
        ({"every_nth": 0}, "worker_config.frame_sampling.every_nth"),
        ({"target_fps": -1.5}, "worker_config.frame_sampling.target_fps"),
        ({"every_nth": 2, "target_fps": 1.0}, "worker_config.frame_sampling: set only one"),
        ({"fps": 2}, "worker_config.frame_sampling.fps: unknown key"),
    ],
)
def test_bad_frame_sampling_is_refused_before_the_run(
    stack: RunningStack, tmp_path: Path, frame_sampling: dict[str, Any], needle: str
) -> None:
    client, _, _ = dataset(stack, tmp_path, f"bad-sampling-{tmp_path.name}")
    with pytest.raises(ApiError) as err:
        client.schedule_compute_worker_run(
            worker_config={"frame_sampling": frame_sampling}, selection_config=selection(0.1)
        )
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.message
