"""Who may reach whom (NetworkPolicies), and how the scheduler balances calls over pods."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from chart import (
    CHART,
    NAMESPACE,
    Manifest,
    RenderError,
    Settings,
    arg,
    component,
    containers,
    labels_match,
    of_kind,
    pod_spec,
    render,
    workload,
)

MESH_VALUES = CHART / "ci" / "mesh-values.yaml"


def _pod_labels(manifests: list[Manifest], name: str) -> dict[str, str]:
    return dict(workload(manifests, name)["spec"]["template"]["metadata"]["labels"])


def _policy_for(manifests: list[Manifest], name: str) -> dict[str, Any]:
    """The one NetworkPolicy whose podSelector selects the component's pods."""
    pods = _pod_labels(manifests, name)
    (found,) = [
        p
        for p in of_kind(manifests, "NetworkPolicy")
        if labels_match(p["spec"]["podSelector"]["matchLabels"], pods)
    ]
    return dict(found["spec"])


def test_the_scheduler_is_reachable_on_its_grpc_port_from_anywhere() -> None:
    policy = _policy_for(render(), "scheduler")
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert "from" not in rule  # no peer list: any source
    assert rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]


def test_the_scheduler_and_the_gateway_can_be_limited_to_given_peers() -> None:
    peers: Settings = {
        "networkPolicy.schedulerFrom[0].namespaceSelector.matchLabels.team": "ml",
        "gateway.enabled": True,
    }
    manifests = render(settings=peers)
    for name, port in (("scheduler", "grpc"), ("gateway", "http")):
        (rule,) = _policy_for(manifests, name)["ingress"]
        assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"team": "ml"}}}]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]


def test_the_gateway_is_its_own_workload_dialing_the_scheduler_service() -> None:
    manifests = render(settings={"gateway.enabled": True})
    gateway = workload(manifests, "gateway")
    (c,) = containers(gateway)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    host, port = arg(c, "--scheduler").rsplit(":", 1)
    (scheduler_service,) = [
        s for s in of_kind(manifests, "Service") if host.startswith(s["metadata"]["name"] + ".")
    ]
    assert labels_match(scheduler_service["spec"]["selector"], _pod_labels(manifests, "scheduler"))
    assert int(port) == scheduler_service["spec"]["ports"][0]["port"]
    # It forwards each caller's own token: no Secret of the release reaches it.
    assert "secret" not in str(pod_spec(gateway)).lower()
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("name", ["selector", "embedder"])
def test_the_selector_and_the_embedders_accept_only_this_releases_scheduler(name: str) -> None:
    manifests = render()
    (rule,) = _policy_for(manifests, name)["ingress"]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}  # same namespace only, no namespaceSelector/ipBlock
    selected = [
        component(d)
        for d in of_kind(manifests, "Deployment")
        if labels_match(peer["podSelector"]["matchLabels"], _pod_labels(manifests, component(d)))
    ]
    assert selected == ["scheduler"]
    # Another release's scheduler differs in its instance label, so it is not let in.
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "dp"
    assert rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]


def test_metrics_ports_open_only_when_metrics_are_on_and_only_to_the_given_scrapers() -> None:
    off = render()
    assert of_kind(off, "ServiceMonitor") == []
    assert "'port': 'metrics'" not in str(off) and "'name': 'metrics'" not in str(off)
    on: Settings = {
        "metrics.enabled": True,
        "metrics.serviceMonitor.enabled": True,
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name": "monitoring",
    }
    manifests = render(settings=on)
    for name in ("scheduler", "selector", "embedder"):
        (rule,) = [r for r in _policy_for(manifests, name)["ingress"] if r["ports"][0]["port"] == "metrics"]
        assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    (monitor,) = of_kind(manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # Only the ClusterIP Services carry the metrics port, so no pod is scraped twice.
    with_metrics = [
        s for s in of_kind(manifests, "Service") if any(p["name"] == "metrics" for p in s["spec"]["ports"])
    ]
    assert len(with_metrics) == 3 and all(s["spec"].get("clusterIP") != "None" for s in with_metrics)


def test_without_a_mesh_the_scheduler_dials_headless_services_with_dns_round_robin_targets() -> None:
    manifests = render()
    (scheduler,) = containers(workload(manifests, "scheduler"))
    services = {s["metadata"]["name"]: s for s in of_kind(manifests, "Service")}
    for flag, name in (("--embedder", "embedder"), ("--selector", "selector")):
        target = arg(scheduler, flag)
        assert target.startswith("dns:///")
        host, port = target.removeprefix("dns:///").rsplit(":", 1)
        service_name, namespace, _svc, _domain = host.split(".", 3)
        assert namespace == NAMESPACE
        service = services[service_name]
        assert service["spec"]["clusterIP"] == "None"
        assert labels_match(service["spec"]["selector"], _pod_labels(manifests, name))
        assert service["spec"]["ports"][0]["port"] == int(port)


@pytest.mark.parametrize("kind", ["linkerd", "istio"])
def test_with_a_mesh_the_scheduler_dials_cluster_ip_services_and_pods_get_the_sidecar(kind: str) -> None:
    manifests = render(MESH_VALUES, {"mesh.kind": kind})
    (scheduler,) = containers(workload(manifests, "scheduler"))
    assert not arg(scheduler, "--embedder").startswith("dns:")
    assert all(s["spec"].get("clusterIP") != "None" for s in of_kind(manifests, "Service"))
    for d in of_kind(manifests, "Deployment"):
        meta = d["spec"]["template"]["metadata"]
        if kind == "linkerd":
            assert meta["annotations"]["linkerd.io/inject"] == "enabled"
        else:
            assert meta["labels"]["sidecar.istio.io/inject"] == "true"
            assert "holdApplicationUntilProxyStarts" in meta["annotations"]["proxy.istio.io/config"]
    # Istio and Linkerd pick the protocol from appProtocol (or the port name).
    for s in of_kind(manifests, "Service"):
        assert s["spec"]["ports"][0]["appProtocol"] == "grpc"


def test_an_unknown_mesh_kind_is_refused_naming_the_value() -> None:
    with pytest.raises(RenderError, match=r"/mesh/kind.*'linkerd', 'istio'"):
        render(settings={"mesh.enabled": True, "mesh.kind": "consul"})


@pytest.mark.parametrize(
    "settings",
    [
        {"mesh.enabled": True, "mesh.kind": "istio"},
        {"metrics.enabled": True, "gateway.enabled": True, "embedder.autoscaling.enabled": False},
        {"scheduler.persistence.existingClaim": "old-state", "embedder.modelCache.existingClaim": "trt"},
    ],
    ids=["istio", "metrics-gateway", "existing-claims"],
)
def test_other_value_combinations_render_valid_kubernetes_objects(settings: Settings) -> None:
    for m in render(settings=settings):
        if m["kind"] == "ServiceMonitor":
            continue  # a CRD: no schema in the bundle
        kubernetes_validate.validate(m, "1.27.0", strict=True)
        kubernetes_validate.validate(m, kubernetes_validate.latest_version(), strict=True)


def test_the_scheduler_volume_comes_from_an_existing_claim_when_one_is_named() -> None:
    manifests = render(settings={"scheduler.persistence.existingClaim": "old-state"})
    assert of_kind(manifests, "PersistentVolumeClaim") == []
    (state,) = [v for v in pod_spec(workload(manifests, "scheduler"))["volumes"] if v["name"] == "state"]
    assert state["persistentVolumeClaim"]["claimName"] == "old-state"
