"""Real service processes with `--log-format json` (and `--metrics-port N --otel`): JSON lines only,
calls counted on /metrics, and a span per call (printed by the console exporter)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from datapool.channels import make_channel, wait_healthy
from datapool.ports import free_port
from datapool.storage.locations import local_location
from datapool.v1 import selector_pb2, selector_pb2_grpc

GET_POOL = "/datapool.v1.Selector/GetPool"


def scraped_calls(url: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "datapool_rpc_requests_total" and s.labels == {"method": GET_POOL, "code": "OK"}:
                return float(s.value)
    return 0.0


def test_a_selector_with_json_logs_metrics_and_tracing_serves_all_three(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPOOL_", "OTEL_"))}
    env.update(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="50", PYTHONUNBUFFERED="1")
    args = ["--port", str(port), "--insecure-no-internal-token", "--log-format", "json"]
    args += ["--metrics-port", str(metrics_port), "--otel"]
    with subprocess.Popen(
        [sys.executable, "-m", "services.selector", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert wait_healthy(f"127.0.0.1:{port}", timeout=60)
            request = selector_pb2.GetPoolRequest(pool=local_location(str(tmp_path)))
            with make_channel(f"127.0.0.1:{port}") as channel:
                for _ in range(2):
                    assert selector_pb2_grpc.SelectorStub(channel).GetPool(request, timeout=10).version == 0
            assert scraped_calls(f"http://127.0.0.1:{metrics_port}/metrics") == 2
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    entries = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    records = [e for e in entries if "logger" in e]
    spans = [e for e in entries if "context" in e]
    assert all(set(r) == {"time", "level", "logger", "message"} for r in records), records
    assert any(f"metrics on http://127.0.0.1:{metrics_port}/metrics" in r["message"] for r in records)
    served = [s for s in spans if s["name"] == GET_POOL and s["kind"] == "SpanKind.SERVER"]
    assert len(served) == 2
    assert {s["resource"]["attributes"]["service.name"] for s in served} == {"datapool-selector"}


def test_the_gateway_with_json_logs_writes_uvicorns_records_as_json_lines_too() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAPOOL_")}
    args = ["--port", str(port), "--scheduler", "127.0.0.1:1", "--log-format", "json"]
    with subprocess.Popen(
        [sys.executable, "-m", "services.gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as proc:
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?token=s3cr3t", timeout=5):
                        break
                except OSError:
                    assert time.monotonic() < deadline, "the gateway did not answer /healthz"
                    time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
    # uvicorn stops gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), output
    records = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("GET /healthz?token=REDACTED" in r["message"] for r in access), records
    assert "s3cr3t" not in output
