from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from embedder_media import N_FRAMES, Media

from services.embedder.backends.torch_cpu import TorchCpuBackend
from services.embedder.decode import MediaInfo, UndecodableFile
from services.embedder.embedding import EmbedEvent, EmbedSummary, FrameBatch, embed_file


def vectors_of(events: list[EmbedEvent]) -> tuple[list[int], np.ndarray]:
    batches = [e for e in events if isinstance(e, FrameBatch)]
    indices = [i for b in batches for i in b.frame_indices]
    return indices, np.concatenate([b.vectors for b in batches])


def test_events_mirror_the_stream(backend: TorchCpuBackend, media: Media) -> None:
    events = list(embed_file(media.videos[0], backend, batch_size=5))
    assert isinstance(events[0], MediaInfo)
    assert all(isinstance(e, FrameBatch) for e in events[1:-1])
    summary = events[-1]
    assert isinstance(summary, EmbedSummary)
    assert summary.frame_count == N_FRAMES
    assert summary.model == backend.model_id
    assert summary.decode_seconds > 0 and summary.embed_seconds > 0
    assert [len(e.frame_indices) for e in events[1:-1] if isinstance(e, FrameBatch)] == [5, 5, 2]
    indices, vectors = vectors_of(events)
    assert indices == list(range(N_FRAMES))
    assert vectors.shape == (N_FRAMES, 1280)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_scenes_are_farther_apart_than_consecutive_frames(backend: TorchCpuBackend, media: Media) -> None:
    per_video = [vectors_of(list(embed_file(p, backend, batch_size=N_FRAMES)))[1] for p in media.videos]
    consecutive = max(float(np.linalg.norm(v[1:] - v[:-1], axis=1).max()) for v in per_video)
    between = min(
        float(np.linalg.norm(a[:, None] - b[None], axis=2).min())
        for i, a in enumerate(per_video)
        for b in per_video[i + 1 :]
    )
    assert consecutive < between, (consecutive, between)


def test_an_image_is_one_frame(backend: TorchCpuBackend, media: Media) -> None:
    events = list(embed_file(media.png, backend))
    assert isinstance(events[0], MediaInfo) and events[0].kind == "image"
    indices, vectors = vectors_of(events)
    assert indices == [0] and vectors.shape == (1, 1280)


def test_undecodable_file_raises_before_any_event(backend: TorchCpuBackend, media: Media) -> None:
    with pytest.raises(UndecodableFile, match="empty file"):
        next(embed_file(media.corrupt["empty"], backend))


def test_failure_part_way_raises_after_batches(
    backend: TorchCpuBackend, media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.embedder import decode

    real_frames = decode.FrameDecoder.frames

    def failing_frames(self: decode.FrameDecoder, **kwargs: object) -> object:
        for index, frame in real_frames(self, **kwargs):  # type: ignore[arg-type]
            if index == 7:
                raise UndecodableFile("decode error at frame 7: simulated")
            yield index, frame

    monkeypatch.setattr(decode.FrameDecoder, "frames", failing_frames)
    seen: list[EmbedEvent] = []
    with pytest.raises(UndecodableFile, match="frame 7"):
        for event in embed_file(media.videos[0], backend, batch_size=4):
            seen.append(event)
    assert [type(e) for e in seen] == [MediaInfo, FrameBatch]


def test_closing_early_stops_the_decode_thread(backend: TorchCpuBackend, tmp_path: Path) -> None:
    from datapool.samples import make_video

    path = make_video(tmp_path / "long.mp4", scene_seed=9, n_frames=200)
    events = embed_file(path, backend, batch_size=2)
    next(events)
    next(events)
    events.close()
    assert not [t for t in threading.enumerate() if t.name == "decode-long.mp4"]
