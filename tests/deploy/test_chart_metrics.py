"""Metrics, logs and traces in the chart: each gRPC service serves /metrics on the port its Service
names `metrics`, which the ServiceMonitor scrapes; the log format and tracing reach every service."""

from __future__ import annotations

import pytest
from chart import CHART, RenderError, arg, component, containers, labels_match, of_kind, render, workload

SERVICES = ("scheduler", "selector", "embedder")
GPU_VALUES = CHART / "ci" / "gpu-values.yaml"
METRICS_ON = {"metrics.enabled": True, "metrics.serviceMonitor.enabled": True}


def test_each_grpc_service_serves_metrics_on_the_port_the_service_monitor_scrapes() -> None:
    manifests = render(settings={**METRICS_ON, "metrics.port": 9500})
    (monitor,) = of_kind(manifests, "ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s
        for s in of_kind(manifests, "Service")
        if labels_match(selector, s["metadata"]["labels"])
        and any(p["name"] == "metrics" for p in s["spec"]["ports"])
    ]
    assert sorted(component(s) for s in scraped) == sorted(SERVICES)  # one Service each, no headless
    for name in SERVICES:
        (c,) = containers(workload(manifests, name))
        assert arg(c, "--metrics-port") == "9500"
        assert {"name": "metrics", "containerPort": 9500, "protocol": "TCP"} in c["ports"]
        (service,) = [s for s in scraped if component(s) == name]
        assert labels_match(
            service["spec"]["selector"], workload(manifests, name)["spec"]["template"]["metadata"]["labels"]
        )


def test_the_gpu_values_with_the_embedder_autoscaler_turn_metrics_on() -> None:
    manifests = render(GPU_VALUES)
    assert of_kind(manifests, "HorizontalPodAutoscaler")
    assert not of_kind(manifests, "ServiceMonitor")  # that one needs prometheus-operator's CRD
    for name in SERVICES:
        (c,) = containers(workload(manifests, name))
        assert arg(c, "--metrics-port") == "9464"


def test_without_metrics_no_service_is_given_a_metrics_port() -> None:
    manifests = render()
    assert not of_kind(manifests, "ServiceMonitor")
    for name in SERVICES:
        (c,) = containers(workload(manifests, name))
        assert not [a for a in c["args"] if str(a).startswith("--metrics-port")]


def test_json_logs_reach_every_service_and_tracing_every_grpc_service() -> None:
    endpoint = "http://otel-collector.monitoring:4317"
    manifests = render(
        settings={
            "logFormat": "json",
            "tracing.enabled": True,
            "tracing.otlpEndpoint": endpoint,
            "gateway.enabled": True,
        }
    )
    for name in SERVICES:
        (c,) = containers(workload(manifests, name))
        assert arg(c, "--log-format") == "json" and "--otel" in c["args"], name
        assert {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": endpoint} in c["env"], name
    (gateway,) = containers(workload(manifests, "gateway"))
    assert arg(gateway, "--log-format") == "json"


def test_tracing_without_a_collector_is_refused_naming_the_value() -> None:
    with pytest.raises(RenderError, match=r"tracing\.otlpEndpoint"):
        render(settings={"tracing.enabled": True})
