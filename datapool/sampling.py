"""Which frames of a video get embedded: the one sampling rule the run config, the
scheduler, the embedder and the embedding cache share.

`every_nth` > 1 keeps frames 0, n, 2n, ...; `target_fps` keeps the first frame at or after
each multiple of 1/target_fps seconds after the first frame; at most one is set, and
neither means every frame. Sampling never renumbers: a kept frame keeps its index among
all decoded frames, so its name and RenderFrames see the same picture whatever rule
embedded it. The embedder applies the rule with `services.embedder.sampling.FramePicker`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from datapool.v1 import embedder_pb2


@dataclass(frozen=True)
class Sampling:
    every_nth: int = 1
    target_fps: float | None = None

    def __post_init__(self) -> None:
        if self.every_nth < 1:
            raise ValueError(f"every_nth must be >= 1, got {self.every_nth}")
        if self.target_fps is not None:
            if not (math.isfinite(self.target_fps) and self.target_fps > 0):
                raise ValueError(f"target_fps must be a finite number > 0, got {self.target_fps}")
            if self.every_nth != 1:
                raise ValueError("every_nth: set only one of every_nth and target_fps")

    @classmethod
    def from_pb(cls, pb: embedder_pb2.FrameSampling) -> Sampling:
        """The request's rule (0 means unset); ValueError names the bad field."""
        return cls(every_nth=pb.every_nth or 1, target_fps=pb.target_fps or None)

    def to_pb(self) -> embedder_pb2.FrameSampling:
        """The rule as the embedder request carries it (0: unset)."""
        return embedder_pb2.FrameSampling(
            every_nth=self.every_nth if self.every_nth > 1 else 0, target_fps=self.target_fps or 0.0
        )

    @property
    def keeps_all(self) -> bool:
        return self.every_nth == 1 and self.target_fps is None

    def cache_key(self) -> str:
        """Names the rule in cache keys: embeddings made under one rule never serve another."""
        if self.every_nth > 1:
            return f"every_nth={self.every_nth}"
        if self.target_fps is not None:
            return f"target_fps={self.target_fps!r}"
        return "all"
