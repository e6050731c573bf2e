"""The gateway runs as one process: the Lightly client's two-step schedule and its read URLs are
held in that process's memory (services/gateway/worker_config.py, tickets.py)."""

from __future__ import annotations

import pytest
from chart import RenderError, render, workload


def test_the_gateway_is_one_replica_replaced_never_overlapped() -> None:
    gateway = workload(render(settings={"gateway.enabled": True}), "gateway")
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"] == {"type": "Recreate"}


def test_more_than_one_gateway_replica_is_refused_naming_the_value() -> None:
    with pytest.raises(RenderError, match=r"at '/gateway/replicas': maximum: got 2, want 1"):
        render(settings={"gateway.enabled": True, "gateway.replicas": 2})
