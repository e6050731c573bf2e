"""Writes the images of one RenderFrames call to the pool on a few threads.

A cloud store answers each put in tens of milliseconds, so a file with many picks would
otherwise spend most of its render waiting for puts one after another; storage SDKs (and
local file writes) release the GIL while they wait, so threads are enough.

Every write is tried: one frame that cannot be written costs the others nothing. The call
then fails naming that frame and its key (the first in the order the frames were rendered),
with the status code its StoreError carries, as it did when frames were written in turn.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from datapool.errors import reworded
from datapool.storage import Store, StoreError

WRITE_THREADS = 8
# Encoded images waiting for a writer: bounds memory (a 4K PNG is tens of MB) while the
# decoder runs ahead of a slow store.
MAX_PENDING = 2 * WRITE_THREADS


class FrameWriter:
    """`submit` each rendered frame's image, then `finish` for the keys written."""

    def __init__(self, target: Store, threads: int = WRITE_THREADS, max_pending: int = MAX_PENDING) -> None:
        self.target = target
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="render-write")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._writes: list[tuple[int, str, Future[None]]] = []

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Writes already handed out finish either way: a frame is either written whole or not at all.
        self._pool.shutdown(wait=True)

    def submit(self, index: int, keys: list[str], image: bytes) -> None:
        """Writes `image` (frame `index`) to each of `keys`; blocks while too many are pending."""
        for key in keys:
            self._slots.acquire()
            future = self._pool.submit(self.target.put, key, image)
            future.add_done_callback(lambda _: self._slots.release())
            self._writes.append((index, key, future))

    def finish(self) -> set[str]:
        """The keys written, once every write has ended; raises for the first one that failed."""
        failed: list[tuple[int, str, BaseException]] = []
        written: set[str] = set()
        for index, key, future in self._writes:
            error = future.exception()
            if error is None:
                written.add(key)
            else:
                failed.append((index, key, error))
        if failed:
            index, key, error = failed[0]
            if not isinstance(error, StoreError):
                raise error
            more = f" ({len(failed) - 1} more frame writes failed)" if len(failed) > 1 else ""
            raise reworded(error, f"writing frame {index} to {key!r}: {error}{more}") from None
        return written
