"""`datapool up`: a metrics port for each gRPC service, recorded, and the log format and tracing passed on."""

from __future__ import annotations

import json
from pathlib import Path

from datapool.cli import build_parser
from datapool.cli_runs import stack_from_args
from datapool.stack import METRICS_FILE, Stack


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_each_service_gets_its_own_metrics_port_recorded_in_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = build_parser().parse_args(
        [
            "up",
            "--state-dir",
            str(state),
            "--embedders",
            "2",
            "--log-format",
            "json",
            "--otel",
            "--http-port",
            "0",
        ]
    )
    stack = stack_from_args(args)
    services = [stack.selector, *stack.embedders, stack.scheduler]
    ports = {s.name: int(flag(s.args, "--metrics-port")) for s in services}
    assert len(set(ports.values())) == 4 and stack.scheduler.address.split(":")[1] != str(ports["scheduler"])
    assert stack.metrics == {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}
    assert json.loads((state / METRICS_FILE).read_text()) == stack.metrics
    for s in services:
        assert flag(s.args, "--log-format") == "json" and "--otel" in s.args, s.name
    assert stack.gateway is not None and flag(stack.gateway.args, "--log-format") == "json"


def test_without_the_flags_each_service_reads_its_environment(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "state")
    for s in [stack.selector, *stack.embedders, stack.scheduler]:
        assert "--log-format" not in s.args and "--otel" not in s.args, s.name
        assert "--metrics-port" in s.args
