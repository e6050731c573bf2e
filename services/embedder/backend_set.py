"""The backends one embedder serves: its default, and any other a run asks for, loaded once on demand."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from services.embedder.backends import BackendOptions, backend_model_id, check_available, known, load_backend
from services.embedder.backends.base import BackendUnavailable, ModelBackend
from services.embedder.metrics import backend_loaded
from services.embedder.network import EMBEDDING_DIM

log = logging.getLogger(__name__)

# The request field the scheduler fills from the run's worker_config.model_backend.
REQUEST_KEY = "backend (the run's worker_config.model_backend)"
# A backend that failed to load is not loaded again for this long. Its causes (a TensorRT
# build error, an ONNX export error, a bad --threads) mostly stay until someone changes the
# machine, and a retry may take minutes (a TensorRT build) while requests queue behind it;
# but some pass on their own (GPU memory held by another process), so the failure is not
# kept for the life of the replica: one retry per cool-down costs little.
LOAD_RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class BackendChoice:
    """What EmbedFile would use for a requested name: the backend, the model id of its vectors, why."""

    name: str
    model_id: str
    dim: int
    reason: str


@dataclass(frozen=True)
class _LoadFailure:
    message: str
    at: float  # time.monotonic()


class BackendSet:
    def __init__(
        self,
        default: ModelBackend,
        options: BackendOptions | None = None,
        retry_after_s: float = LOAD_RETRY_AFTER_S,
    ) -> None:
        self.default = default
        self.options = options or BackendOptions()
        self.retry_after_s = retry_after_s
        self._loaded: dict[str, ModelBackend] = {default.name: default}
        backend_loaded(default.name, default.model_id, default=True)
        self._failed: dict[str, _LoadFailure] = {}
        # Loads are rare and slow (a TensorRT build takes minutes): one at a time, and a
        # request that waits for a load gets the loaded backend (or its failure) instead of
        # loading it again.
        self._load_lock = threading.Lock()

    def _is_default(self, name: str) -> bool:
        return name in ("", "auto", self.default.name)

    def _chosen(self, backend: ModelBackend) -> BackendChoice:
        return BackendChoice(backend.name, backend.model_id, backend.dim, backend.reason)

    def describe(self, name: str) -> BackendChoice:
        """What EmbedFile would use for `name`, without loading it.

        Raises UnknownBackend or BackendUnavailable (also for a backend whose load failed
        recently), so a run can be refused before it embeds.
        """
        if self._is_default(name):
            return self._chosen(self.default)
        loaded = self._loaded.get(name)
        if loaded is not None:
            return self._chosen(loaded)
        known(name, REQUEST_KEY)
        self._raise_if_failed(name)
        check_available(name, REQUEST_KEY)
        return BackendChoice(
            name, backend_model_id(name, self.options), EMBEDDING_DIM, self._requested_reason(name)
        )

    def _requested_reason(self, name: str) -> str:
        return (
            f"requested by the run's worker_config.model_backend={name!r} "
            f"(this embedder's default: {self.default.name})"
        )

    def _raise_if_failed(self, name: str) -> None:
        failure = self._failed.get(name)
        if failure is None:
            return
        wait = failure.at + self.retry_after_s - time.monotonic()
        if wait > 0:
            raise BackendUnavailable(
                f"{failure.message} (not loaded again for another {wait:.0f} s, "
                "or until the embedder restarts)"
            )

    def get(self, name: str) -> ModelBackend:
        if self._is_default(name):
            return self.default
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        known(name, REQUEST_KEY)
        self._raise_if_failed(name)
        with self._load_lock:
            loaded = self._loaded.get(name)
            if loaded is not None:
                return loaded
            # A request that waited here while the load failed gets that failure, not a second load.
            self._raise_if_failed(name)
            check_available(name, REQUEST_KEY)
            try:
                backend = load_backend(name, self.options, REQUEST_KEY, self._requested_reason(name))
                backend.warm_up()
            except Exception as e:
                log.warning("loading model backend %s failed: %s", name, e)
                message = f"{REQUEST_KEY}: model backend {name!r} failed to load: {e.__class__.__name__}: {e}"
                self._failed[name] = _LoadFailure(message, time.monotonic())
                raise BackendUnavailable(message) from None
            log.info("loaded model backend %s on request (%s)", backend.name, backend.reason)
            self._failed.pop(name, None)
            self._loaded[name] = backend
            backend_loaded(backend.name, backend.model_id, default=False)
            return backend
