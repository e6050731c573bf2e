"""OpenTelemetry tracing of the gRPC calls between the services, behind `--otel` / `$DATAPOOL_OTEL=1`.

opentelemetry-instrumentation-grpc patches `grpc.server` and the channel constructors, so
every server built afterwards opens a span per call and every channel carries the trace
context to the next service: a run's Select, EmbedFile and RenderFrames calls land in one
trace. Health checks and reflection are left out (probes would fill the backend).

Spans go to an OTLP collector (`$OTEL_EXPORTER_OTLP_ENDPOINT`, default localhost:4317), or
with `$OTEL_TRACES_EXPORTER=console` to stderr, one JSON object per line. Nothing of
OpenTelemetry is imported while tracing is off.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

OTEL_ENV = "DATAPOOL_OTEL"
EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
_TRUE = ("1", "true", "yes", "on")
_UNTRACED = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")


def tracing_requested(flag: bool) -> bool:
    """The `--otel` flag, or `$DATAPOOL_OTEL` set to 1/true/yes/on."""
    return flag or os.environ.get(OTEL_ENV, "").strip().lower() in _TRUE


def _default_exporter() -> SpanExporter:
    kind = os.environ.get(EXPORTER_ENV, "otlp").strip().lower()
    if kind == "console":
        import sys

        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n")
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"${EXPORTER_ENV} must be otlp or console with --otel, got {kind!r}")


def setup_tracing(service: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Instruments gRPC servers and channels created from now on; spans go to `exporter`
    (default: from `$OTEL_TRACES_EXPORTER`) as `datapool-<service>`. Call before building
    the server and opening channels."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        GrpcInstrumentorClient,
        GrpcInstrumentorServer,
        filters,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"datapool-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter or _default_exporter()))
    trace.set_tracer_provider(provider)
    untraced = filters.negate(filters.any_of(*(filters.service_name(s) for s in _UNTRACED)))
    # The asyncio ones too: the scheduler serves on grpc.aio and reads pool tags over an aio channel.
    for instrumentor in (
        GrpcInstrumentorServer(filter_=untraced),  # type: ignore[no-untyped-call]
        GrpcInstrumentorClient(filter_=untraced),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorServer(filter_=untraced),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorClient(filter_=untraced),  # type: ignore[no-untyped-call]
    ):
        instrumentor.instrument(tracer_provider=provider)
    return provider
