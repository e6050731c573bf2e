"""The workloads the chart renders: probes, security, writable paths, GPUs and autoscaling."""

from __future__ import annotations

from pathlib import Path

import pytest
from chart import (
    CHART,
    CI_VALUES,
    RenderError,
    arg,
    component,
    containers,
    of_kind,
    pod_spec,
    render,
    workload,
)

GPU = "nvidia.com/gpu"
GPU_VALUES = CHART / "ci" / "gpu-values.yaml"
CPU_VALUES = CHART / "ci" / "cpu-values.yaml"
PORTS = {"scheduler": 50051, "selector": 50052, "embedder": 50053}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_workload_has_grpc_startup_readiness_and_liveness_probes_on_its_port(values: Path) -> None:
    deployments = of_kind(render(values), "Deployment")
    assert sorted(component(d) for d in deployments) == ["embedder", "scheduler", "selector"]
    for d in deployments:
        for c in containers(d):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["grpc"] == {"port": PORTS[component(d)]}, (component(d), probe)


def test_the_embedders_startup_probe_waits_long_enough_for_a_model_to_load() -> None:
    for values in (None, GPU_VALUES):
        (c,) = containers(workload(render(values), "embedder"))
        startup = c["startupProbe"]
        # Liveness only starts after the startup probe succeeds, so a slow load is never killed.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_container_runs_non_root_read_only_without_privileges_or_capabilities(values: Path) -> None:
    manifests = render(values, {"gateway.enabled": True})
    for d in [*of_kind(manifests, "Deployment"), *of_kind(manifests, "Pod")]:
        pod = pod_spec(d)["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in containers(d):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_container_has_requests_limits_and_a_volume_for_each_path_it_writes(values: Path) -> None:
    manifests = render(values, {"gateway.enabled": True})
    # /cache is $XDG_CACHE_HOME in the image, and where the embedders keep TensorRT engines.
    writes = {
        "scheduler": ["/tmp", "/cache", "/var/lib/datapool"],
        "selector": ["/tmp", "/cache"],
        "embedder": ["/tmp", "/cache"],
        "gateway": ["/tmp"],
    }
    for d in of_kind(manifests, "Deployment"):
        volumes = {v["name"] for v in pod_spec(d)["volumes"]}
        for c in containers(d):
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert {m["name"] for m in c["volumeMounts"]} <= volumes
            for path in writes[component(d)]:
                assert path in mounts and not mounts[path].get("readOnly"), (component(d), path)
    (scheduler,) = containers(workload(manifests, "scheduler"))
    assert arg(scheduler, "--state-dir") == "/var/lib/datapool"
    (embedder,) = containers(workload(manifests, "embedder"))
    assert arg(embedder, "--trt-cache").startswith("/cache/")


def test_the_scheduler_keeps_its_sqlite_state_on_a_claim_with_one_replica_recreated() -> None:
    manifests = render()
    scheduler = workload(manifests, "scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    (claim,) = of_kind(manifests, "PersistentVolumeClaim")
    (state,) = [v for v in pod_spec(scheduler)["volumes"] if v["name"] == "state"]
    assert state["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert workload(manifests, "selector")["spec"]["replicas"] == 1


def test_gpu_limits_appear_only_on_the_embedders() -> None:
    for d in of_kind(render(GPU_VALUES), "Deployment"):
        for c in containers(d):
            limits = c["resources"]["limits"]
            requests = c["resources"].get("requests", {})
            if component(d) == "embedder":
                assert limits[GPU] == 1
            else:
                assert GPU not in limits and GPU not in requests, component(d)
    (embedder,) = containers(workload(render(GPU_VALUES), "embedder"))
    assert embedder["image"].endswith(":0.1.0-gpu")
    spec = pod_spec(workload(render(GPU_VALUES), "embedder"))
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"][0]["key"] == GPU


def test_a_cpu_cluster_asks_for_no_gpu_at_all() -> None:
    assert GPU not in str(render(CPU_VALUES))


def test_the_embedders_scale_on_their_own_per_pod_metric_and_the_deployment_leaves_replicas_to_it() -> None:
    manifests = render(GPU_VALUES)
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    embedder = workload(manifests, "embedder")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": embedder["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "datapool_embedder_busy_ratio"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 8)
    # A replica count in the Deployment would reset the HPA's choice on every `helm upgrade`.
    assert "replicas" not in embedder["spec"]
    (scheduler,) = containers(workload(manifests, "scheduler"))
    assert arg(scheduler, "--embed-streams") == "16"  # 2 files in flight per embedder at most


def test_without_autoscaling_there_is_no_hpa_and_the_replica_count_is_fixed() -> None:
    manifests = render(CPU_VALUES)
    assert of_kind(manifests, "HorizontalPodAutoscaler") == []
    assert workload(manifests, "embedder")["spec"]["replicas"] == 2


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_workload_has_a_disruption_budget_that_selects_its_pods(values: Path) -> None:
    manifests = render(values)
    budgets = {component(b): b for b in of_kind(manifests, "PodDisruptionBudget")}
    for d in of_kind(manifests, "Deployment"):
        selector = budgets[component(d)]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()


def test_values_of_the_wrong_type_or_range_are_refused_naming_the_key() -> None:
    with pytest.raises(RenderError, match=r"/embedder/gpus.*want integer"):
        render(settings={"embedder.gpus": "one"})
    with pytest.raises(RenderError, match=r"/embedder/backend"):
        render(settings={"embedder.backend": "cuda"})
    with pytest.raises(RenderError, match=r"minReplicas \(5\) is above maxReplicas \(2\)"):
        render(settings={"embedder.autoscaling.minReplicas": 5, "embedder.autoscaling.maxReplicas": 2})
