"""The render stage asks the embedders for the run's image format, with each file's frame count."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from stage_fakes import FRAMES_PER_FILE, FakeEmbedder, FakeEmbedders, FakeSelector, Observer, video_run

from datapool.config import parse_run_config
from datapool.v1 import embedder_pb2
from services.scheduler.pipeline import RunPipeline


class RecordingEmbedder(FakeEmbedder):
    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.renders: list[embedder_pb2.RenderFramesRequest] = []

    def render_frames(self, request: embedder_pb2.RenderFramesRequest) -> list[str]:
        self.renders.append(request)
        return super().render_frames(request)


def test_a_jpg_run_renders_jpgs_and_tells_the_embedder_each_files_frame_count(tmp_path: Path) -> None:
    spec = video_run(tmp_path, ["a.mp4", "b.mp4"])
    selection = spec.config.to_json()["selection_config"]
    config = parse_run_config({"output_image_format": "jpg", "jpg_quality": 70}, selection)
    embedder, selector = RecordingEmbedder("10.0.0.1:1"), FakeSelector()
    RunPipeline(FakeEmbedders(embedder), selector).execute(replace(spec, config=config), Observer())
    assert sorted(r.file.path for r in embedder.renders) == ["a.mp4", "b.mp4"]
    for request in embedder.renders:
        assert (request.image_format, request.jpg_quality) == ("jpg", 70)
        assert request.frame_count == FRAMES_PER_FILE
        [key] = request.target_keys
        assert key == f"frames/r/{request.file.path}-0.jpg"
    [commit] = selector.commits
    assert sorted(f.key for f in commit.frames) == ["frames/r/a.mp4-0.jpg", "frames/r/b.mp4-0.jpg"]
