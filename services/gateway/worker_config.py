"""Lightly's run configuration (the `POST /v1/docker/worker/config/vX` body) as datapool's.

The Lightly client sends `{"version": "V4", "config": {"docker": ..., "lightly": ..., "selection":
...}}` with camelCase keys. Keys datapool has are renamed to its snake_case config; keys it does not
have are refused with a message naming them, never dropped, so a run never does less than asked.
Values are checked by the scheduler when the run is scheduled (gRPC stays the one validator).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from services.gateway.errors import GatewayError, not_found, unsupported

# Lightly's worker keys datapool implements; `use_datapool` is accepted because datapool always
# grows the pool (newer Lightly workers require it to be set for that).
_WORKER_KEYS = {"enable_training", "datasource", "output_image_format", "jpg_quality"}
_ACCEPTED_AND_IMPLIED = {"use_datapool"}
_DATASOURCE_KEYS = {"process_all", "bypass_verify", "enable_datapool_update"}
_SELECTION_KEYS = {"n_samples", "proportion_samples", "strategies"}
MAX_PENDING_CONFIGS = 1024


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {snake(k): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


@dataclass(frozen=True)
class RunConfig:
    worker_config: dict[str, Any]
    selection_config: dict[str, Any]


def _worker(docker: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in docker.items():
        if key in _ACCEPTED_AND_IMPLIED:
            if not isinstance(value, bool):
                raise GatewayError(400, "BAD_REQUEST", f"worker_config.{key}: expected true or false")
            continue
        if key not in _WORKER_KEYS:
            raise unsupported(f"worker_config.{key}")
        out[key] = value
    datasource = out.get("datasource")
    if isinstance(datasource, dict):
        for key in datasource:
            if key not in _DATASOURCE_KEYS:
                raise unsupported(f"worker_config.datasource.{key}")
    return out


def _selection(selection: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in selection.items():
        if key == "auto_tasks" and value in ([], None):
            continue  # the Lightly client always sends an empty list
        if key not in _SELECTION_KEYS:
            raise unsupported(f"selection_config.{key}")
        out[key] = value
    return out


def from_lightly(body: dict[str, Any]) -> RunConfig:
    """The vX request body as datapool's two config objects; GatewayError (400) naming a bad key."""
    version = body.get("version")
    if version != "V4":
        raise GatewayError(400, "BAD_REQUEST", f"version: {version!r} is not supported; expected 'V4'")
    config = body.get("config")
    if not isinstance(config, dict):
        raise GatewayError(400, "MALFORMED_REQUEST", "config: expected an object")
    for key, value in config.items():
        if key in ("docker", "selection", "workerType") or value is None:
            continue
        if key == "lightly":
            raise unsupported("lightly_config (the Lightly Worker's training and model settings)")
        raise unsupported(f"config.{key}")
    if config.get("workerType", "FULL") != "FULL":
        raise unsupported(f"config.workerType {config['workerType']!r}")
    docker = _snake_keys(config.get("docker") or {})
    selection = _snake_keys(config.get("selection") or {})
    return RunConfig(_worker(docker), _selection(selection))


class PendingConfigs:
    """Configs between the client's config post and its schedule post (Lightly's two-step schedule).

    In memory: both posts of one `schedule_compute_worker_run` must reach the same gateway process
    (one replica, or sticky sessions). Bounded, oldest dropped first.
    """

    def __init__(self, limit: int = MAX_PENDING_CONFIGS) -> None:
        self._limit = limit
        self._configs: OrderedDict[str, RunConfig] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, config: RunConfig) -> str:
        config_id = uuid.uuid4().hex[:24]
        with self._lock:
            self._configs[config_id] = config
            while len(self._configs) > self._limit:
                self._configs.popitem(last=False)
        return config_id

    def get(self, config_id: str) -> RunConfig:
        with self._lock:
            config = self._configs.get(config_id)
        if config is None:
            raise not_found(
                f"configId {config_id!r}: no such worker config on this gateway "
                "(post the config and schedule the run through the same gateway)"
            )
        return config
