"""Stage 3, cache lookup: files whose vectors the pool's embedding cache holds are not embedded again.

The selector loads their vectors into the run's session (they join the Select that
follows); this stage learns which files those are and leaves the others to embed.
"""

from __future__ import annotations

from collections.abc import Iterator

from datapool.pool.files import FileRef
from datapool.run_report import ProcessedFile
from datapool.v1 import common_pb2, selector_pb2
from services.scheduler.run.context import RunContext, RunFailed
from services.scheduler.run.interfaces import SelectorError

# Files per LoadCachedRequest message.
CACHE_LOOKUP_CHUNK = 10_000


def file_key(f: common_pb2.FileRef) -> FileRef:
    """The file's identity, to compare and group files by (messages compare by object)."""
    return FileRef(f.path, f.size, f.etag)


def load_cached(ctx: RunContext, files: list[common_pb2.FileRef]) -> list[common_pb2.FileRef]:
    """Has the selector load the cached files into the session; returns those to embed."""
    model = ctx.model
    scope = selector_pb2.EmbeddingScope(
        model=model.info.name, dim=model.info.dim, sampling_key=model.sampling_key
    )

    def requests() -> Iterator[selector_pb2.LoadCachedRequest]:
        yield selector_pb2.LoadCachedRequest(session_id=ctx.session_id, pool=ctx.spec.pool, scope=scope)
        for start in range(0, len(files), CACHE_LOOKUP_CHUNK):
            yield selector_pb2.LoadCachedRequest(files=files[start : start + CACHE_LOOKUP_CHUNK])

    tally, cache = ctx.tally, ctx.report.embedding_cache
    hits: set[FileRef] = set()
    with ctx.timed("cache_lookup"):
        try:
            for chunk in ctx.selector.load_cached(requests()):
                cache.unusable_entries += chunk.unreadable
                for hit in chunk.hits:
                    hits.add(file_key(hit.file))
                    cache.files_from_cache += 1
                    cache.frames_from_cache += hit.vector_count
                    tally.processed.append(
                        ProcessedFile(
                            path=hit.file.path,
                            size=hit.file.size,
                            frames=hit.frame_count,
                            frames_embedded=0,
                            frames_from_cache=hit.vector_count,
                            from_cache=True,
                        )
                    )
        except SelectorError as e:
            raise RunFailed(f"cannot look files up in the pool's embedding cache: {e}") from None
    tally.files_done = cache.files_from_cache
    ctx.observer.set_progress(files_done=cache.files_from_cache, frames_embedded=0)
    return [f for f in files if file_key(f) not in hits]
