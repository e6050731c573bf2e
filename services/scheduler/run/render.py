"""Stage 6, render: the embedders write the picked frames into the pool as PNGs (or JPEGs,
with worker_config.output_image_format).

Frames are grouped by source file (one decode each) and written under a prefix unique
to the run, so a crashed or lost commit can never overwrite a frame a manifest names.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from datapool.pool.files import FileRef
from datapool.pool.layout import frame_key
from datapool.v1 import embedder_pb2, selector_pb2
from services.scheduler.run.cache_lookup import file_key
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.interfaces import EmbedderError


def render(ctx: RunContext, picks: list[selector_pb2.Pick], rendered: dict[str, str]) -> None:
    """Writes the frames of `picks` not yet in `rendered`, adding each frame name's key to it."""
    by_file: dict[FileRef, list[selector_pb2.Pick]] = defaultdict(list)
    for p in picks:
        if p.frame_name not in rendered:
            by_file[file_key(p.file)].append(p)
    spec = ctx.spec
    worker = spec.config.worker
    # The frame counts the embedding found let the embedder seek to the picks' GOPs safely.
    frame_counts = {(f.path, f.size): f.frames for f in ctx.tally.processed}

    def render_one(key: FileRef) -> None:
        group = by_file[key]
        request = embedder_pb2.RenderFramesRequest(
            source=spec.input,
            file=key.to_proto(),
            frame_indices=[p.frame_index for p in group],
            target=spec.pool,
            target_keys=[frame_key(spec.run_id, p.frame_name, worker.output_image_format) for p in group],
            image_format=worker.output_image_format,
            jpg_quality=worker.jpg_quality,
            frame_count=frame_counts.get((key.path, key.size), 0),
        )
        try:
            written = ctx.replica().render_frames(request)
        except EmbedderError as e:
            raise RunFailed(f"cannot write frames of {key.path}: {e}") from None
        for p, k in zip(group, written, strict=True):
            rendered[p.frame_name] = k

    with ctx.timed("render"), ThreadPoolExecutor(max_workers=max(2, len(ctx.embedders.replicas))) as ex:
        list(ex.map(render_one, list(by_file)))
