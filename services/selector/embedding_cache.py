"""The pool's embedding cache: each file's vectors per (model, sampling rule) in the pool
datasource, so that a `process_all` run over unchanged files embeds nothing.

An entry's key is a hash of what produced it (the file's path, size and etag, the model,
the sampling rule), so its content never changes: writing it again puts equal content, and
a plain put also replaces an entry that turned out unusable. No manifest names an entry,
so entries live outside the commit protocol: gc leaves them alone, deleting any of them
at any time only costs re-embedding, and entries of files since changed or deleted stay
until someone deletes them (see `EMBEDDING_CACHE_PREFIX`).

An entry that cannot be read or used is a miss, never an error: the file is embedded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from datapool.pool.cache_entry import CacheEntry, CacheScope, UnusableEntry, decode_entry, encode_entry
from datapool.pool.files import FileRef
from datapool.pool.layout import EMBEDDING_CACHE_PREFIX
from datapool.storage import ObjectNotFound, Store, StoreError, StoreNotFoundError
from services.selector.metrics import CACHE_HITS, CACHE_MISSES

log = logging.getLogger(__name__)

# Reads and writes in flight at once: cloud stores answer each in tens of milliseconds.
IO_THREADS = 16
# Cloud listings return this many keys per request (S3, GCS and Azure alike).
KEYS_PER_LIST_REQUEST = 1000


@dataclass
class CacheLoad:
    hits: list[CacheEntry] = field(default_factory=list)
    # Entries that exist but could not be used; their files are misses.
    unreadable: int = 0
    # Files not looked up, or whose entry was let go, once `admit` refused one; all misses.
    not_admitted: int = 0


class EmbeddingCache:
    def __init__(self, store: Store, scope: CacheScope) -> None:
        self.store = store
        self.scope = scope
        digest = hashlib.sha256(f"{scope.model}\n{scope.sampling_key}".encode()).hexdigest()
        self.prefix = f"{EMBEDDING_CACHE_PREFIX}{digest[:24]}/"

    def key(self, file: FileRef) -> str:
        identity = json.dumps([file.path, file.size, file.etag], separators=(",", ":"))
        return f"{self.prefix}{hashlib.sha256(identity.encode()).hexdigest()[:40]}.emb"

    def load(
        self, files: Iterable[FileRef], dim: int, admit: Callable[[CacheEntry], bool] = lambda _: True
    ) -> CacheLoad:
        """The usable entries of `files` (in no particular order) with `dim`-wide vectors.

        Each usable entry is offered to `admit`; after its first refusal (a memory cap) no
        further entry is read, and the files of those are misses."""
        wanted = {self.key(f): f for f in files}
        present = self._present(wanted)
        keys = sorted(wanted if present is None else present)
        result = CacheLoad()
        refused = threading.Event()

        def read(key: str) -> CacheEntry | bool | None:
            return None if refused.is_set() else self._read(key, wanted[key], dim)

        with ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="cache-read") as ex:
            for entry in ex.map(read, keys):
                if refused.is_set() or (isinstance(entry, CacheEntry) and not admit(entry)):
                    refused.set()
                    result.not_admitted += entry is not False
                elif isinstance(entry, CacheEntry):
                    result.hits.append(entry)
                elif entry:
                    result.unreadable += 1
        CACHE_HITS.inc(len(result.hits))
        CACHE_MISSES.inc(len(wanted) - len(result.hits))
        return result

    def write(self, entry: CacheEntry) -> None:
        """Raises StoreError; the caller decides how much a failed write matters."""
        self.store.put(self.key(entry.file), encode_entry(entry, self.scope))

    def _present(self, wanted: dict[str, FileRef]) -> set[str] | None:
        """The wanted keys that exist, from one listing of the scope's prefix; None when
        reading each wanted key would cost fewer round trips than listing on (a small run
        against a large cache) or when the listing fails."""
        if not wanted:
            return set()
        # Parallel reads take about len(wanted) / IO_THREADS round trips; a listing takes
        # one per KEYS_PER_LIST_REQUEST keys, one after another.
        budget = KEYS_PER_LIST_REQUEST * math.ceil(len(wanted) / IO_THREADS)
        found: set[str] = set()
        try:
            for seen, info in enumerate(self.store.list(self.prefix)):
                if seen >= budget:
                    return None
                if info.key in wanted:
                    found.add(info.key)
        except StoreNotFoundError:
            return set()  # no pool yet, so no cache either
        except StoreError as e:
            log.warning(
                "cannot list the embedding cache in %s (%s); reading entries one by one",
                self.store.describe(),
                e,
            )
            return None
        return found

    def _read(self, key: str, file: FileRef, dim: int) -> CacheEntry | bool:
        """The entry; False for a plain miss; True for an entry that exists but is unusable."""
        try:
            data = self.store.read(key)
        except ObjectNotFound:
            return False
        except StoreError as e:
            log.warning(
                "cannot read embedding cache entry %s for %r (%s); embedding the file", key, file.path, e
            )
            return False
        try:
            return decode_entry(data, self.scope, file, dim)
        except UnusableEntry as e:
            log.warning(
                "embedding cache entry %s for %r is unusable (%s); embedding the file again",
                key,
                file.path,
                e,
            )
            return True


@dataclass(frozen=True)
class CacheWrites:
    """What a run's background cache writes came to, once they are all done."""

    written: int = 0
    failed: int = 0


class CacheWriter:
    """Writes entries in the background, so a slow store never holds up the Select stream."""

    def __init__(self, cache: EmbeddingCache) -> None:
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="cache-write")
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0

    def submit(self, entry: CacheEntry) -> None:
        self._pool.submit(self._write, entry)

    def finish(self) -> CacheWrites:
        """Waits for every write."""
        self._pool.shutdown(wait=True)
        with self._lock:
            return CacheWrites(self.written, self.failed)

    def abandon(self) -> None:
        """Lets queued writes finish in the background: entries of completed files stay
        valid whatever happens to the run, and a run tried again will find them."""
        self._pool.shutdown(wait=False)

    def _write(self, entry: CacheEntry) -> None:
        try:
            self.cache.write(entry)
        except StoreError as e:
            # Only costs embedding the file again next time.
            log.warning("cannot write the embedding cache entry of %r: %s", entry.file.path, e)
            with self._lock:
                self.failed += 1
            return
        with self._lock:
            self.written += 1
