"""The backends one embedder serves: its default, and any other a run asks for, loaded once on demand."""

from __future__ import annotations

import logging
import threading

from services.embedder.backends import BackendOptions, check_available, known, load_backend
from services.embedder.model import BackendUnavailable, ModelBackend

log = logging.getLogger(__name__)

# The request field the scheduler fills from the run's worker_config.model_backend.
REQUEST_KEY = "backend (the run's worker_config.model_backend)"


class BackendSet:
    def __init__(self, default: ModelBackend, options: BackendOptions | None = None) -> None:
        self.default = default
        self.options = options or BackendOptions()
        self._loaded: dict[str, ModelBackend] = {default.name: default}
        # Loads are rare and slow (a TensorRT build takes minutes): one at a time, and a
        # request that waits for a load gets the loaded backend instead of loading it again.
        self._load_lock = threading.Lock()

    def _is_default(self, name: str) -> bool:
        return name in ("", "auto", self.default.name)

    def describe(self, name: str) -> tuple[str, str]:
        """(backend, reason) that EmbedFile would use for `name`, without loading it.

        Raises UnknownBackend or BackendUnavailable, so a run can be refused before it embeds.
        """
        if self._is_default(name):
            return self.default.name, self.default.reason
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded.name, loaded.reason
        check_available(name, REQUEST_KEY)
        return name, self._requested_reason(name)

    def _requested_reason(self, name: str) -> str:
        return (
            f"requested by the run's worker_config.model_backend={name!r} "
            f"(this embedder's default: {self.default.name})"
        )

    def get(self, name: str) -> ModelBackend:
        if self._is_default(name):
            return self.default
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        known(name, REQUEST_KEY)
        with self._load_lock:
            loaded = self._loaded.get(name)
            if loaded is not None:
                return loaded
            check_available(name, REQUEST_KEY)
            try:
                backend = load_backend(name, self.options, REQUEST_KEY, self._requested_reason(name))
                backend.warm_up()
            except Exception as e:
                log.warning("loading model backend %s failed: %s", name, e)
                raise BackendUnavailable(
                    f"{REQUEST_KEY}: model backend {name!r} failed to load: {e.__class__.__name__}: {e}"
                ) from None
            log.info("loaded model backend %s on request (%s)", name, backend.reason)
            self._loaded[name] = backend
            return backend
