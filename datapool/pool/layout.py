"""Where the pool lives in its datasource, and the JSON shape of its manifests.

All bookkeeping keys sit under `.datapool/`, rendered frames under `frames/<run id>/`.
Manifests are numbered and created only if absent; everything a manifest points at is
immutable and named by the commit that wrote it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

ROOT = ".datapool/"
MANIFESTS_PREFIX = ROOT + "manifests/"
DATA_PREFIX = ROOT + "data/"
# Embeddings per (file identity, model, sampling rule); outside the commit protocol: no
# manifest names an entry, so gc never collects one and deleting them only costs re-embedding.
EMBEDDING_CACHE_PREFIX = ROOT + "cache/embeddings/"
# Rendered frames, one folder per run: `frames/<run id>/<frame name>`. A run's frames are
# written before its commit, so gc (and a failed commit) can tell whose they are.
FRAMES_PREFIX = "frames/"
# The tag name that means the whole pool; no commit may take it.
INITIAL_TAG = "initial-tag"
MANIFEST_FORMAT = 1
# Processed files of one segment: gzip'd JSON lines `[path, size, etag]`, sorted, so that
# segments merge into one sorted stream without loading a set. Segments written before
# this format name a `processed.json` array instead; readers tell them apart by the key.
PROCESSED_NAME = "processed.jsonl.gz"
LEGACY_PROCESSED_SUFFIX = ".json"
# Zero-padding makes key order equal version order, so a listing finds the newest.
_MANIFEST_NAME = re.compile(r"^(\d{20})\.json$")


def frame_key(run_id: str, frame_name: str, image_format: str = "png") -> str:
    """Where run `run_id` renders the frame named `frame_name`: the name with the suffix of the
    run's worker_config.output_image_format (`.png` or `.jpg`). The selector names frames with
    that suffix already; a selector older than SelectionSpec.image_format names them `.png`
    whatever the format, and its frames land where they always did."""
    stem, suffix = posixpath.splitext(frame_name)
    if suffix in (".png", ".jpg"):
        frame_name = stem
    return f"{FRAMES_PREFIX}{run_id}/{frame_name}.{image_format}"


def frame_file_name(key: str) -> str:
    """The frame's file name as users see it (exports): its key without `frames/<run id>/`."""
    return key.removeprefix(FRAMES_PREFIX).partition("/")[2] if key.startswith(FRAMES_PREFIX) else key


def run_frames_prefix(run_id: str) -> str:
    return f"{FRAMES_PREFIX}{run_id}/"


def manifest_key(version: int) -> str:
    return f"{MANIFESTS_PREFIX}{version:020d}.json"


def manifest_version(key: str) -> int | None:
    """The version a manifest key names, or None for any other object under the prefix."""
    if not key.startswith(MANIFESTS_PREFIX):
        return None
    match = _MANIFEST_NAME.match(key[len(MANIFESTS_PREFIX) :])
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SegmentKeys:
    """A segment's data objects: `entries.json` (one row per frame), `embeddings.npy` (a
    frame_count x dim array in entry order, float16 when that holds every value exactly,
    else float32; readers accept both) and the processed files."""

    entries: str
    embeddings: str
    processed: str

    @staticmethod
    def for_commit(commit_id: str) -> SegmentKeys:
        folder = f"{DATA_PREFIX}{commit_id}/"
        return SegmentKeys(folder + "entries.json", folder + "embeddings.npy", folder + PROCESSED_NAME)


@dataclass(frozen=True)
class PoolSegment:
    """One commit's additions to the pool."""

    commit_id: str
    run_id: str
    version: int
    tag: str
    created_unix_ms: int
    frame_count: int
    keys: SegmentKeys

    def to_json(self) -> dict[str, Any]:
        return {
            "commit_id": self.commit_id,
            "run_id": self.run_id,
            "version": self.version,
            "tag": self.tag,
            "created_unix_ms": self.created_unix_ms,
            "frame_count": self.frame_count,
            "entries": self.keys.entries,
            "embeddings": self.keys.embeddings,
            "processed": self.keys.processed,
        }

    @staticmethod
    def from_json(obj: dict[str, Any]) -> PoolSegment:
        return PoolSegment(
            commit_id=str(obj["commit_id"]),
            run_id=str(obj["run_id"]),
            version=int(obj["version"]),
            tag=str(obj["tag"]),
            created_unix_ms=int(obj["created_unix_ms"]),
            frame_count=int(obj["frame_count"]),
            keys=SegmentKeys(str(obj["entries"]), str(obj["embeddings"]), str(obj["processed"])),
        )


@dataclass(frozen=True)
class PoolManifest:
    """The whole pool at one version: every segment, oldest first."""

    version: int
    commit_id: str
    run_id: str
    created_unix_ms: int
    model: str
    dim: int
    segments: tuple[PoolSegment, ...] = field(default_factory=tuple)

    @property
    def frame_count(self) -> int:
        return sum(s.frame_count for s in self.segments)

    def segments_after(self, version: int) -> tuple[PoolSegment, ...]:
        return tuple(s for s in self.segments if s.version > version)

    def tagged_segments(self) -> tuple[PoolSegment, ...]:
        return tuple(s for s in self.segments if s.tag)

    def run_segment(self, run_id: str) -> PoolSegment | None:
        """The segment run `run_id` committed (a run commits once), None when none names it."""
        return next((s for s in self.segments if run_id and s.run_id == run_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": self.version,
            "commit_id": self.commit_id,
            "run_id": self.run_id,
            "created_unix_ms": self.created_unix_ms,
            "model": self.model,
            "dim": self.dim,
            "segments": [s.to_json() for s in self.segments],
        }

    @staticmethod
    def from_json(obj: dict[str, Any]) -> PoolManifest:
        if obj.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unsupported manifest format {obj.get('format')!r}")
        return PoolManifest(
            version=int(obj["version"]),
            commit_id=str(obj["commit_id"]),
            run_id=str(obj["run_id"]),
            created_unix_ms=int(obj["created_unix_ms"]),
            model=str(obj["model"]),
            dim=int(obj["dim"]),
            segments=tuple(PoolSegment.from_json(s) for s in obj["segments"]),
        )
