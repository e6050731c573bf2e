"""The run configuration schema: the seed client's keys, validated before a run is accepted.

Errors name the path of the bad key (``selection_config.strategies[0].strategy.type``)
so that a person can fix the script without reading our code.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from datapool.errors import InvalidArgument
from datapool.sampling import Sampling

# The embedder's model backends (services/embedder/backends); names a run may ask for.
MODEL_BACKENDS = ("auto", "tensorrt", "torch-cuda", "onnxruntime-cpu", "torch-cpu")

# Bounds a run config is checked against (the README's configuration table lists them).
# They keep every number inside what the services can represent and mean: frame counts
# fit an int64 with room to spare, distances between unit vectors are at most 2.
MAX_CONFIG_BYTES = 64 * 1024  # each of worker_config and selection_config, as JSON text
MAX_N_SAMPLES = 1_000_000_000
MAX_EVERY_NTH = 2**31 - 1  # the int32 of EmbedFileRequest
MIN_TARGET_FPS = 0.001  # one frame every 1000 s
MAX_TARGET_FPS = 1000.0
MAX_MIN_DISTANCE = 2.0
DEFAULT_JPG_QUALITY = 90  # worker_config.jpg_quality; Pillow's scale, 1-100
# Digits an integer in the JSON may have before it is refused without being converted
# (Python refuses int() of over 4300 digits with an error that names no key).
_MAX_INT_DIGITS = 30
# How much of a refused value a message repeats: the whole message travels back in a
# gRPC trailer, which has a size limit of its own.
_ECHO_CHARS = 60

TRAINING_NOT_SUPPORTED = (
    "worker_config.enable_training: training is not supported with the datapool; set it to false"
)


class _Strict(BaseModel):
    # Unknown keys and silently coerced types are the two mistakes that make a run
    # do something other than what the user wrote, so both are refused.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatasourceConfig(_Strict):
    process_all: bool = False
    bypass_verify: bool = False
    enable_datapool_update: bool = True


class FrameSampling(_Strict):
    """Which frames of a video are embedded; the default (neither key) is every frame.

    Frame names keep the frame's index in the original video either way.
    """

    # An int32 in EmbedFileRequest: a larger value must fail here, naming the key.
    every_nth: int | None = Field(default=None, ge=1, le=MAX_EVERY_NTH)
    target_fps: float | None = Field(default=None, ge=MIN_TARGET_FPS, le=MAX_TARGET_FPS, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_rule(self) -> FrameSampling:
        # The config names the keys; the rule's own checks are datapool.sampling's.
        if self.every_nth is not None and self.target_fps is not None:
            raise ValueError("set only one of every_nth and target_fps")
        return self

    def rule(self) -> Sampling:
        """The sampling rule these keys describe."""
        return Sampling(every_nth=self.every_nth or 1, target_fps=self.target_fps)

    def cache_key(self) -> str:
        return self.rule().cache_key()


class WorkerConfig(_Strict):
    enable_training: bool = False
    datasource: DatasourceConfig = Field(default_factory=DatasourceConfig)
    frame_sampling: FrameSampling = Field(default_factory=FrameSampling)
    # "auto" picks the fastest backend each embedder can run; a name forces that backend.
    model_backend: str = "auto"
    # The Lightly Worker's keys for the picked frames' files: lossless PNG, or smaller JPEGs.
    output_image_format: Literal["png", "jpg"] = "png"
    jpg_quality: int = Field(default=DEFAULT_JPG_QUALITY, ge=1, le=100)

    @field_validator("model_backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        if name not in MODEL_BACKENDS:
            raise ValueError(f"unknown model backend {_echo(name)}; known: {', '.join(MODEL_BACKENDS)}")
        return name

    @model_validator(mode="after")
    def _no_training(self) -> WorkerConfig:
        if self.enable_training:
            raise ValueError(TRAINING_NOT_SUPPORTED)
        if not self.datasource.enable_datapool_update:
            raise ValueError(
                "worker_config.datasource.enable_datapool_update: false is not supported; "
                "datapool always updates the pool"
            )
        return self


class StrategyInput(_Strict):
    type: Literal["EMBEDDINGS"]


class DiversityStrategy(_Strict):
    type: Literal["DIVERSITY"]
    stopping_condition_minimum_distance: float | None = None

    @model_validator(mode="after")
    def _distance_ok(self) -> DiversityStrategy:
        d = self.stopping_condition_minimum_distance
        if d is not None and (isinstance(d, bool) or not math.isfinite(d) or not 0 <= d <= MAX_MIN_DISTANCE):
            raise ValueError(
                "stopping_condition_minimum_distance must be a finite number >= 0 and "
                f"<= {MAX_MIN_DISTANCE:g} (embeddings are unit vectors)"
            )
        return self


class Strategy(_Strict):
    input: StrategyInput
    strategy: DiversityStrategy


class SelectionConfig(_Strict):
    n_samples: int | None = Field(default=None, ge=0, le=MAX_N_SAMPLES)
    proportion_samples: float | None = None
    strategies: list[Strategy] = Field(min_length=1, max_length=1)

    @model_validator(mode="after")
    def _sample_count(self) -> SelectionConfig:
        if self.n_samples is not None and self.proportion_samples is not None:
            raise ValueError("set only one of n_samples and proportion_samples")
        p = self.proportion_samples
        if p is not None and not (0 < p <= 1):
            raise ValueError("proportion_samples must be in (0, 1]")
        if self.n_samples is None and p is None and self.min_distance == 0:
            raise ValueError(
                "set n_samples or proportion_samples, or a stopping_condition_minimum_distance > 0, "
                "or the selection would take every frame"
            )
        return self

    @property
    def min_distance(self) -> float:
        d = self.strategies[0].strategy.stopping_condition_minimum_distance
        return float(d) if d is not None else 0.0


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    worker: WorkerConfig
    selection: SelectionConfig

    @property
    def process_all(self) -> bool:
        return self.worker.datasource.process_all

    def to_json(self) -> dict[str, Any]:
        return {
            "worker_config": self.worker.model_dump(),
            "selection_config": self.selection.model_dump(exclude_none=True),
        }


def _path(root: str, loc: tuple[int | str, ...]) -> str:
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "float", "int", "bool", "list", "none") or part.startswith(
            ("function-", "literal[")
        ):
            continue  # pydantic's union-branch markers, not user keys
        else:
            out += f".{part}"
    return out


class _LongInteger:
    """Stands in for a JSON integer too long to convert, so the schema refuses it by key."""

    def __init__(self, digits: str) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"a {len(self.digits.lstrip('-'))}-digit integer"


def _parse_int(text: str) -> int | _LongInteger:
    return _LongInteger(text) if len(text.lstrip("-")) > _MAX_INT_DIGITS else int(text)


def _echo(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO_CHARS else f"{text[: _ECHO_CHARS - 3]}... ({len(text)} characters)"


def _describe(err: Any, root: str) -> str:
    loc = _path(root, tuple(err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "missing":
        return f"{loc}: missing required field"
    if kind == "literal_error":
        expected = err["msg"].replace("Input should be", "expected")
        return f"{loc}: {_echo(err['input'])} is not supported; {expected}"
    if isinstance(err["input"], _LongInteger):
        return f"{loc}: {err['input']!r} is out of range"
    if kind == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return msg if msg.startswith(root) else f"{loc}: {msg}"
    got = type(err["input"]).__name__
    return f"{loc}: {err['msg'].lower()} (got {got} {_echo(err['input'])})"


def _parse(model: type[_Strict], raw: object, root: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{root}: expected an object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        # Union members each report the same mistake; keep one line per distinct problem.
        lines = list(dict.fromkeys(_describe(err, root) for err in e.errors()))
        more = f"; and {len(lines) - 10} more" if len(lines) > 10 else ""
        raise InvalidArgument("; ".join(lines[:10]) + more) from None


def parse_run_config(worker_config: object, selection_config: object) -> RunConfig:
    """Validates both dicts; raises InvalidArgument naming every bad key's path."""
    worker = _parse(WorkerConfig, worker_config, "worker_config")
    selection = _parse(SelectionConfig, selection_config, "selection_config")
    return RunConfig(worker=worker, selection=selection)


def parse_run_config_json(worker_json: str, selection_json: str) -> RunConfig:
    def load(text: str, root: str) -> object:
        if not text:
            return {}
        size = len(text.encode())
        if size > MAX_CONFIG_BYTES:
            raise InvalidArgument(
                f"{root}: {size} bytes of JSON, over the limit of {MAX_CONFIG_BYTES} bytes; "
                "a run config is a few hundred bytes"
            )
        try:
            return json.loads(text, parse_int=_parse_int)
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"{root}: not valid JSON: {e}") from None
        except RecursionError:
            raise InvalidArgument(
                f"{root}: JSON nested too deeply; a run config is a few levels deep"
            ) from None

    return parse_run_config(load(worker_json, "worker_config"), load(selection_json, "selection_config"))
