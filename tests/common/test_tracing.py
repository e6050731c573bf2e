"""`--otel`: gRPC calls between the services make linked spans; without it nothing of OpenTelemetry loads.

Each check runs in a fresh interpreter: tracing patches grpc process-wide, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# A server and a client in one process, as the scheduler calling the selector: the server's
# span must be the child of the client's, in one trace; health checks make no span.
TRACED_CALL = textwrap.dedent(
    """
    import json
    import grpc
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from services.common.tracing import setup_tracing

    exporter = InMemorySpanExporter()
    provider = setup_tracing("probe", exporter)

    from datapool.channels import make_channel, wait_healthy
    from services.common.server import ServiceServer

    def register(server):
        handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
        generic = grpc.method_handlers_generic_handler("test.Probe", {"Ok": handler})
        server.add_generic_rpc_handlers((generic,))

    server = ServiceServer("probe", "127.0.0.1:0", register, ["test.Probe"])
    server.start()
    address = f"127.0.0.1:{server.port}"
    assert wait_healthy(address, timeout=10)
    with make_channel(address) as channel:
        assert channel.unary_unary("/test.Probe/Ok")(b"x", timeout=10) == b"x"
    server.stop(grace=0)
    provider.force_flush()
    print(json.dumps([
        {
            "name": s.name,
            "kind": s.kind.name,
            "trace": s.context.trace_id,
            "span": s.context.span_id,
            "parent": s.parent.span_id if s.parent else None,
            "service": s.resource.attributes["service.name"],
        }
        for s in exporter.get_finished_spans()
    ]))
    """
)

# What a service imports at start without --otel, and what the user package imports.
UNTRACED_START = textwrap.dedent(
    """
    import argparse, json, sys
    import datapool, datapool.client, datapool.storage
    light = sorted(m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry.sdk")))
    from services.common.observability import add_observability_args, start_observability
    parser = argparse.ArgumentParser()
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--host", default="127.0.0.1")
    add_observability_args(parser)
    start_observability(parser.parse_args([]), "probe", "probe")
    import services.common.server
    sdk = ("opentelemetry.sdk", "opentelemetry.instrumentation")
    otel = sorted(m for m in sys.modules if m.startswith(sdk))
    print(json.dumps({"light": light, "otel": otel}))
    """
)


def run_python(code: str, env: dict[str, str] | None = None) -> Any:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_traced_call_makes_a_client_span_and_its_server_child_in_one_trace() -> None:
    spans = run_python(TRACED_CALL)
    assert {s["name"] for s in spans} == {"/test.Probe/Ok"}, spans  # no health-check span
    (client,) = [s for s in spans if s["kind"] == "CLIENT"]
    (server,) = [s for s in spans if s["kind"] == "SERVER"]
    assert server["trace"] == client["trace"]
    assert server["parent"] == client["span"]
    assert server["service"] == "datapool-probe"


def test_without_otel_no_opentelemetry_sdk_is_imported_and_the_user_package_stays_light() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATAPOOL_OTEL"}
    imported = run_python(UNTRACED_START, env)
    assert imported == {"light": [], "otel": []}
