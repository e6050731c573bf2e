"""The selector's metrics: selection time and size, commits and their races, the embedding cache."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SELECTION_SECONDS = Histogram(
    "datapool_selector_selection_seconds",
    "Seconds of the greedy selection at the end of a Select (after the last file arrived).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0),
)
FRAMES_SELECTED = Counter("datapool_selector_frames_selected", "Frames a Select picked for the pool.")
COMMITS = Counter("datapool_selector_commits", "Commits that made a new pool version.")
LOST_RACES = Counter(
    "datapool_selector_commit_lost_races", "Manifest puts that found the version taken by another writer."
)
RETRIES = Counter(
    "datapool_selector_commit_retries",
    "Times a commit re-read a newer pool version and redid its picks before trying again.",
)
CACHE_HITS = Counter(
    "datapool_embedding_cache_hits", "Files whose vectors were loaded from the pool's embedding cache."
)
CACHE_MISSES = Counter(
    "datapool_embedding_cache_misses",
    "Files looked up in the embedding cache and embedded instead (absent, unusable or over the cap).",
)
