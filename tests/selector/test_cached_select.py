"""A Select fed from the embedding cache: the same picks as from streamed vectors, loads bound to
the Select with the same model and rule, dropped with their session, and LoadCachedEmbeddings
answering its hits in chunks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cache_support import (
    DIM,
    SAMPLING,
    SCOPE,
    caching_spec,
    files_and_vectors,
    from_cache,
    one_file_loaded_for,
    stream,
)
from selector_helpers import file_ref, rendered_picks, select

from datapool.errors import InvalidArgument
from datapool.pool.cache_entry import CacheScope
from datapool.pool.repository import PoolRepository
from datapool.v1 import common_pb2, selector_pb2
from services.selector import servicer
from services.selector.embedding_cache import EmbeddingCache
from services.selector.service import SelectorService
from services.selector.servicer import SelectorServicer
from services.selector.session import Committed


@pytest.mark.parametrize("cached_share", ["all", "half"])
def test_picks_from_cached_vectors_equal_picks_from_streamed_ones(
    service: SelectorService, repo: PoolRepository, cached_share: str
) -> None:
    files = files_and_vectors(6)
    streamed = select(service, repo, caching_spec("streamed", n_samples=7), files, dtype="float16")
    if cached_share == "all":
        cached = from_cache(service, repo, "cached", files, n_samples=7)
    else:
        # Half from the cache, half streamed in, as in a run that added files.
        half = dict(list(files.items())[:3])
        service.load_cached("cached", repo, SCOPE, DIM, list(half))
        rest = {f: v for f, v in files.items() if f not in half}
        stream_ = service.open_select(caching_spec("cached", n_samples=7, cached_files=3), repo)
        for file, vectors in rest.items():
            stream_.add_batch(
                file, list(range(len(vectors))), vectors.astype("<f2").tobytes(), DIM, "float16"
            )
            stream_.complete_file(file, len(vectors), "video")
        cached = service.finish_select(stream_)
    assert len(streamed.picks) == 7
    assert [(p.frame_name, p.distance) for p in cached.picks] == [
        (p.frame_name, p.distance) for p in streamed.picks
    ]
    assert cached.candidate_count == streamed.candidate_count
    # A session fed from the cache commits like any other.
    committed = service.commit("cached", "cached-tag", rendered_picks(cached))
    assert isinstance(committed, Committed) and committed.picks == cached.picks
    manifest = repo.newest_manifest()
    assert manifest is not None
    assert sorted(repo.load_processed(manifest.segments[0])) == sorted(files)


def test_loads_are_for_the_select_with_the_same_model_and_rule(
    service: SelectorService, repo: PoolRepository
) -> None:
    files = one_file_loaded_for(service, repo, "s2")
    with pytest.raises(InvalidArgument, match="sampling_key"):
        service.open_select(caching_spec("s2", sampling_key="every_nth=2", cached_files=1), repo)
    with pytest.raises(InvalidArgument, match=r"scope\.dim"):
        service.load_cached("s3", repo, SCOPE, 0, files)
    with pytest.raises(InvalidArgument, match="sampling_key"):
        service.load_cached("s3", repo, CacheScope(SCOPE.model, ""), DIM, files)


def test_close_session_drops_a_load(service: SelectorService, repo: PoolRepository) -> None:
    one_file_loaded_for(service, repo, "s2")
    assert service.cached_loads.staged_bytes > 0
    service.close_session("s2")
    assert service.cached_loads.staged_bytes == 0
    # Nothing staged: a Select that expects no cached file sees no candidates at all.
    assert service.finish_select(service.open_select(caching_spec("s2", n_samples=1), repo)).picks == []


def test_load_cached_embeddings_message_answers_hits_in_chunks(
    service: SelectorService, repo: PoolRepository, pool_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = files_and_vectors(5, frames=3)
    stream(service, repo, "s1", files)
    bad = next(iter(files))
    repo.store.put(EmbeddingCache(repo.store, SCOPE).key(bad), b"corrupt")
    monkeypatch.setattr(servicer, "_CACHED_FILES_CHUNK", 3)
    refs = [common_pb2.FileRef(path=f.path, size=f.size, etag=f.etag) for f in [*files, file_ref("new.mp4")]]
    requests = [
        selector_pb2.LoadCachedRequest(
            session_id="s2",
            pool=common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(pool_root))),
            scope=selector_pb2.EmbeddingScope(model=SCOPE.model, dim=DIM, sampling_key=SAMPLING),
            files=refs[:2],
        ),
        selector_pb2.LoadCachedRequest(files=refs[2:]),
    ]
    answers = list(SelectorServicer(service).LoadCachedEmbeddings(iter(requests), None))  # type: ignore[arg-type]
    assert [len(a.hits) for a in answers] == [3, 1] and [a.unreadable for a in answers] == [0, 1]
    hits = sorted((h.file.path, h.frame_count, h.kind, h.vector_count) for a in answers for h in a.hits)
    assert hits == sorted((f.path, 3, "video", 3) for f in list(files)[1:])
    # The loaded files are the Select's candidates, though no batch streams in.
    session = service.finish_select(service.open_select(caching_spec("s2", 2, cached_files=4), repo))
    assert session.candidate_count == 4 * 3 and len(session.picks) == 2
