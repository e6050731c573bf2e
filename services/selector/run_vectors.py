"""Where one Select's candidate vectors live: in memory up to a budget, then in a spill file.

A run's vectors are stored once, here, and everything else reads them in place: the
collector's per-file candidates, selector_rs (which keeps a reference, not a copy) and
the candidate set Commit reads its picks from. Past the budget they live in an unnamed
file, read through memory maps: page cache the kernel can write back and reclaim, not
anonymous memory, so a run of any length fits in RAM.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import IO

import numpy as np

from datapool.errors import ResourceExhausted
from datapool.pool.state import Vectors

# `python -m services.selector --max-run-memory-mb`: per Select, not for all together.
DEFAULT_MAX_RUN_MEMORY_BYTES = 2048 << 20

# The file grows by mappings of at least this size, so that a run of many small files
# (single images) needs a few hundred memory maps, not one per file.
SPILL_CHUNK_BYTES = 256 << 20


class RunVectors:
    """Keeps blocks of float32 rows: in memory while the run's total is within
    `max_memory_bytes`, past it in a spill file under `directory` (default: the system's
    temporary directory).

    The spill file is created already unlinked (O_TMPFILE where the file system has it),
    so it never has a name to leak: its disk space returns once the last view of it is
    gone (the session is closed or expires, the Select fails or is cancelled) or the
    process ends, and a restarted selector has nothing to clean up.
    """

    def __init__(self, max_memory_bytes: int = DEFAULT_MAX_RUN_MEMORY_BYTES, directory: str | None = None):
        if max_memory_bytes < 0:
            raise ValueError(f"max_memory_bytes must be >= 0, got {max_memory_bytes}")
        self.max_memory_bytes = max_memory_bytes
        self.directory = directory
        self.memory_bytes = 0
        self.spilled_bytes = 0
        self._file: IO[bytes] | None = None
        self._chunk: np.memmap | None = None
        self._chunk_used = 0

    def keep(self, vectors: Vectors) -> Vectors:
        """`vectors` as a read-only C-contiguous float32 array, in memory or in the spill file."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.memory_bytes + vectors.nbytes <= self.max_memory_bytes or vectors.nbytes == 0:
            self.memory_bytes += vectors.nbytes
            kept = vectors
        else:
            kept = self._spill(vectors)
        # selector_rs reads kept blocks in place from now on: nothing may write to them.
        kept = kept.view()
        kept.flags.writeable = False
        return kept

    @property
    def spill_file_bytes(self) -> int:
        """The spill file's size on disk (0 when nothing was spilled)."""
        return os.fstat(self._file.fileno()).st_size if self._file is not None else 0

    def _spill(self, vectors: Vectors) -> Vectors:
        nbytes = vectors.nbytes
        if self._chunk is None or self._chunk_used + nbytes > len(self._chunk):
            self._new_chunk(max(nbytes, SPILL_CHUNK_BYTES))
        assert self._chunk is not None
        start = self._chunk_used
        area = self._chunk[start : start + nbytes]
        area[:] = vectors.reshape(-1).view(np.uint8)
        # Rows are whole float32s and chunks start page-aligned in memory: every block stays aligned.
        self._chunk_used += nbytes
        self.spilled_bytes += nbytes
        return area.view(np.float32).reshape(vectors.shape)

    def _new_chunk(self, nbytes: int) -> None:
        if self._file is None:
            # Closed with this object: it lives as long as the run, not a `with` block. The
            # finalizer closes it; left to the file's own __del__ it would warn (ResourceWarning).
            self._file = tempfile.TemporaryFile(dir=self.directory, prefix="datapool-spill-")  # noqa: SIM115
            weakref.finalize(self, self._file.close)
        offset = self.spill_file_bytes
        try:
            # Reserved before it is mapped: a write through the map to a full disk would be
            # SIGBUS, the end of the process, where this is an error for this Select only.
            os.posix_fallocate(self._file.fileno(), offset, nbytes)
        except OSError as e:
            where = self.directory or tempfile.gettempdir()
            raise ResourceExhausted(
                f"the Select's spill file in {where!r} cannot grow by {nbytes >> 20} MiB ({e.strerror}): "
                "free space there, choose another --spill-dir, or raise --max-run-memory-mb"
            ) from e
        self._chunk = np.memmap(self._file, dtype=np.uint8, mode="r+", offset=offset, shape=(nbytes,))
        self._chunk_used = 0
