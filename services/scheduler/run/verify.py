"""Stage 1, verify: access may have changed since set_*_config, so find out before anything is embedded."""

from __future__ import annotations

from datapool.errors import DatapoolError, ResourceExhausted
from datapool.storage import StoreFull
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import PURPOSE_NAMES, verify_datasource
from services.scheduler.run.context import RunContext, RunFailed, RunSpec


def verify(ctx: RunContext) -> None:
    """Checks both datasources unless worker_config.datasource.bypass_verify says not to."""
    if ctx.spec.config.worker.datasource.bypass_verify:
        return
    with ctx.timed("verify"):
        verify_access(ctx.spec)


def verify_access(spec: RunSpec) -> None:
    for location, purpose in ((spec.input, scheduler_pb2.INPUT), (spec.pool, scheduler_pb2.LIGHTLY)):
        try:
            verify_datasource(location, purpose)
        except DatapoolError as e:
            name = PURPOSE_NAMES[purpose]
            if isinstance(e, ResourceExhausted | StoreFull):
                # A full disk: no permission to fix and no check worth skipping.
                raise RunFailed(f"the {name} datasource has no space left: {e}") from None
            raise RunFailed(
                f"the {name} datasource failed its access check at run start: {e}. Fix the "
                "permissions, or set worker_config.datasource.bypass_verify to skip this check"
            ) from None
