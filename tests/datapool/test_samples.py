from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

from datapool.samples import Scene, make_sample_bucket, make_video, sample_name, video_codec_for


def decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg"])
def test_make_video_writes_every_frame(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"v{suffix}", scene_seed=1, n_frames=8, size=(64, 48), fps=5)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        frames = list(container.decode(stream))
    assert len(frames) == 8


def test_h264_where_the_wheel_has_it() -> None:
    expected = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    assert video_codec_for("a.mp4") == expected
    assert video_codec_for("a.avi") == "mpeg4"


def test_same_seed_same_pictures_and_seeds_differ(tmp_path: Path) -> None:
    a_path = make_video(tmp_path / "a.mp4", scene_seed=3, n_frames=5)
    b_path = make_video(tmp_path / "b.mp4", scene_seed=3, n_frames=5)
    assert a_path.read_bytes() == b_path.read_bytes()
    a, b = decode_all(a_path), decode_all(b_path)
    c = decode_all(make_video(tmp_path / "c.mp4", scene_seed=4, n_frames=5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_scene_moves_slowly() -> None:
    scene = Scene(5, (96, 64))
    f0, f1 = scene.frame(0).astype(int), scene.frame(1).astype(int)
    other = Scene(6, (96, 64)).frame(0).astype(int)
    assert 0 < np.abs(f0 - f1).mean() < np.abs(f0 - other).mean()


def test_sample_bucket_names_and_speed(tmp_path: Path) -> None:
    started = time.perf_counter()
    paths = make_sample_bucket(tmp_path, 5)
    elapsed = time.perf_counter() - started
    assert [p.name for p in paths] == [
        "campus0-c0.mp4",
        "campus0-c1.mp4",
        "campus0-c2.mp4",
        "campus0-c3.mp4",
        "campus1-c0.mp4",
    ]
    assert sample_name(9) == "campus2-c1.mp4"
    assert elapsed < 0.5 * len(paths)


def test_odd_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        make_video(tmp_path / "odd.mp4", scene_seed=0, size=(95, 64))
