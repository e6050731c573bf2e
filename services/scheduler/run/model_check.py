"""The run's model, checked once at its start.

Every vector of a run must come from one model: the selection compares them and the
embedding cache files them under it. The embedders say which model and backend would
embed for the run's worker_config.model_backend, or refuse the backend before anything
is embedded. The embedding stage compares each file's model with this one.
"""

from __future__ import annotations

from datapool.config import FrameSampling
from services.scheduler.run.context import RunContext, RunFailed, RunModel
from services.scheduler.run.interfaces import BackendRefused


def cache_sampling_key(sampling: FrameSampling, numbering: str) -> str:
    """The embedding cache scope's sampling key: which frames (`sampling`), and how the
    embedders number and decode them (`ModelInfo.numbering`)."""
    return f"{sampling.cache_key()};{numbering}"


def backend_refused(backend: str, e: BackendRefused, where: str = "") -> RunFailed:
    return RunFailed(
        f"worker_config.model_backend={backend!r} cannot be used: {where}{e}. "
        'Set it to "auto" or to a backend the embedders can run'
    )


def check_model(ctx: RunContext) -> RunModel:
    """Asks one embedder; fails the run naming worker_config.model_backend if it refuses."""
    worker = ctx.spec.config.worker
    try:
        info = ctx.replica().model_info(worker.model_backend)
    except BackendRefused as e:
        raise backend_refused(worker.model_backend, e) from None
    model = RunModel(info, cache_sampling_key(worker.frame_sampling, info.numbering))
    ctx.model = model
    ctx.report.model = info
    return model
