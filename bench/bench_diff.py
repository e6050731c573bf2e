"""How much the diff against the pool costs on top of listing the INPUT datasource.

An INPUT "prefix" of 1,000,000 videos against a pool that processed 900,000 of them
(nine commits of 100,000; 1,000 of them since replaced, so new again). The listing is
synthesised in key order by an in-process Store, as a cloud listing would arrive.

Measured, each in this process:
  (a) listing alone: every object through the media-type filter (what any run does);
  (b) listing + diff: the scheduler's real listing stage (`list_new_files`), merge-joining the listing
      with the selector's sorted processed-files stream (synthesised lazily, as the
      gRPC stream arrives);
  (c) the selector producing that stream from the nine stored segments
      (gzip'd sorted JSON lines, k-way merged) and packing it into gRPC messages;
  (d) for comparison, the old diff: a Python set of every processed (path, size, etag).
Wall times come from a plain run; Python heap peaks from a second run under tracemalloc.

    .venv/bin/python bench/bench_diff.py [--objects 1000000] [--processed 900000]
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datapool import media_types
from datapool.config import parse_run_config
from datapool.pool.files import FileRef
from datapool.pool.layout import PoolManifest, PoolSegment
from datapool.pool.repository import PoolRepository
from datapool.storage import ObjectInfo, Store
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, scheduler_pb2, selector_pb2
from services.scheduler.pipeline import RunSpec
from services.scheduler.run import listing as listing_module
from services.selector.queries import processed_file_chunks

SEGMENTS = 9
REPLACED = 1_000


def key(i: int) -> str:
    # Increasing with i, so the synthetic listing needs no sort.
    return f"videos/cam{i // 10_000:03d}/clip-{i:07d}.mp4"


def etag(i: int, replaced: bool = False) -> str:
    return f"{i * 2654435761 % (1 << 64):016x}{'-v2' if replaced else ''}"


class SyntheticListing(Store):
    """Lists `n` videos in key order without any of them existing."""

    def __init__(self, n: int) -> None:
        # Names, sizes and etags made up front, so a listing pass costs what a Store's
        # iterator costs per object, not string formatting.
        order = range(n)
        replaced_every = max(1, n // REPLACED)
        self.rows = [(key(i), 1_000_000 + i, etag(i, replaced=i % replaced_every == 1)) for i in order]

    def describe(self) -> str:
        return "synthetic listing"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for k, size, tag in self.rows:
            yield ObjectInfo(k, size, tag)

    def stat(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def put_if_absent(self, key: str, data: bytes) -> bool:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError


class MemoryStore(Store):
    """The pool bucket, in memory: the selector-side figure is about parsing, not I/O."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def describe(self) -> str:
        return "memory"

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for k in sorted(self.objects):
            if k.startswith(prefix):
                yield ObjectInfo(k, len(self.objects[k]), "")

    def stat(self, key: str) -> ObjectInfo | None:
        return ObjectInfo(key, len(self.objects[key]), "") if key in self.objects else None

    def read(self, key: str) -> bytes:
        return self.objects[key]

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.objects.setdefault(key, data) is data

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def processed_indices(n: int, processed: int) -> list[int]:
    # Every tenth object (of a 1M listing) is new, spread through the key space.
    step = n / max(1, n - processed)
    new = {int(j * step) for j in range(n - processed)}
    # In key order, as the selector streams them.
    return [i for i in range(n) if i not in new][:processed]


def processed_rows(indices: list[int]) -> list[tuple[str, int, str]]:
    return [(key(i), 1_000_000 + i, etag(i)) for i in indices]


def processed_stream(rows: list[tuple[str, int, str]]) -> Iterator[common_pb2.FileRef]:
    """What SelectorClient.processed_files yields: FileRef messages in (path, size, etag) order,
    each made as it is consumed (as a gRPC stream decodes them)."""
    for path, size, tag in rows:
        yield common_pb2.FileRef(path=path, size=size, etag=tag)


class FakeSelector:
    def __init__(self, rows: list[tuple[str, int, str]]) -> None:
        self.rows = rows

    def processed_files(self, pool: common_pb2.StoreLocation) -> Iterator[common_pb2.FileRef]:
        return processed_stream(self.rows)


def build_pool(indices: list[int]) -> PoolRepository:
    repo = PoolRepository(MemoryStore())
    segments: list[PoolSegment] = []
    per = -(-len(indices) // SEGMENTS)
    for s in range(SEGMENTS):
        part = indices[s * per : (s + 1) * per]
        files = [FileRef(key(i), 1_000_000 + i, etag(i)) for i in part]
        commit_id = f"{s + 1:032x}"
        keys = repo.write_segment_data(commit_id, [], np.zeros((0, 4), np.float32), files)
        segments.append(PoolSegment(commit_id, f"run{s}", s + 1, "", 0, 0, keys))
        repo.create_manifest(PoolManifest(s + 1, commit_id, f"run{s}", 0, "m", 4, tuple(segments)))
    return repo


def measure(fn: Callable[[], Any], traced: bool) -> tuple[float, int, Any]:
    gc.collect()
    if traced:
        tracemalloc.start()
        tracemalloc.reset_peak()
    t = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t
    peak = 0
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return wall, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--processed", type=int, default=900_000)
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc pass (faster)")
    args = parser.parse_args()

    store = SyntheticListing(args.objects)
    indices = processed_indices(args.objects, args.processed)
    rows = processed_rows(indices)
    selector = FakeSelector(rows)
    # The listing stage opens this synthetic store instead of the INPUT location.
    patched: Any = listing_module
    patched.open_store = lambda _loc: store
    config = parse_run_config(
        {},
        {
            "n_samples": 1,
            "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
        },
    )
    spec = RunSpec("bench", scheduler_pb2.VIDEOS, local_location("/in"), local_location("/pool"), config)
    t = time.perf_counter()
    repo = build_pool(indices)
    setup_s = time.perf_counter() - t
    stored = sum(len(v) for k, v in repo.store.objects.items() if "processed" in k)  # type: ignore[attr-defined]

    def listing_alone() -> int:
        return sum(1 for o in store.list() if media_types.is_video(o.key))

    def listing_and_diff() -> int:
        return len(listing_module.list_new_files(spec, selector).new)

    def selector_stream() -> int:
        n = 0
        for chunk in processed_file_chunks(repo):
            msg = selector_pb2.ProcessedFiles(
                files=[common_pb2.FileRef(path=f.path, size=f.size, etag=f.etag) for f in chunk]
            )
            n += len(msg.files)
        return n

    def old_set_diff() -> int:
        done = {(f.path, f.size, f.etag) for f in processed_stream(rows)}
        return sum(
            1 for o in store.list() if media_types.is_video(o.key) and (o.key, o.size, o.etag) not in done
        )

    phases = [
        ("(a) listing alone", listing_alone),
        ("(b) listing + merge-join diff", listing_and_diff),
        ("(c) selector: sorted processed stream", selector_stream),
        ("(d) old set-based diff (for comparison)", old_set_diff),
    ]
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or '?'}")
    print(
        f"{args.objects:,} listed objects, {len(indices):,} processed in {SEGMENTS} segments "
        f"({stored / 1e6:.1f} MB stored, set up in {setup_s:.1f}s), {REPLACED:,} replaced since"
    )
    walls: dict[str, float] = {}
    for name, fn in phases:
        wall, _, result = measure(fn, traced=False)
        _, peak, _ = (0.0, 0, None) if args.no_trace else measure(fn, traced=True)
        walls[name] = wall
        print(f"{name:42s} {wall:7.2f} s   python heap peak {peak / 2**20:8.1f} MiB   -> {result:,}")
    a, b = walls["(a) listing alone"], walls["(b) listing + merge-join diff"]
    print(f"listing + diff / listing alone = {b / a:.2f}x")
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (all phases, incl. the pool set-up): {maxrss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
