"""The embeddings export as Lightly writes it: `filenames,embedding_0..embedding_{d-1},labels`."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from datapool.v1 import scheduler_pb2
from datapool.vectors import from_batch


def write_embeddings_csv(
    output_path: str | os.PathLike[str], chunks: Iterable[scheduler_pb2.EmbeddingRows]
) -> None:
    """One row per pooled frame; an empty export writes only `filenames,labels`."""
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    header_written = False
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        for rows in chunks:
            dim = rows.vectors.dim
            vectors = from_batch(rows.vectors, len(rows.filenames))
            if not header_written:
                writer.writerow(["filenames", *(f"embedding_{i}" for i in range(dim)), "labels"])
                header_written = True
            for name, vec in zip(rows.filenames, vectors, strict=True):
                writer.writerow([name, *(repr(float(x)) for x in vec), 0])
        if not header_written:
            writer.writerow(["filenames", "labels"])
