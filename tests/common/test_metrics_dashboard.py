"""The Grafana dashboard and the chart's embedder autoscaler use only metric names the services export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

# Imported for their side effect: each registers its service's metrics in the default registry.
import services.common.loop_lag
import services.common.metrics
import services.embedder.metrics
import services.scheduler.metrics
import services.selector.metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "datapool.json"
CHART = ROOT / "deploy" / "helm" / "datapool"
MODULES = (
    # Imported here so that their metrics are registered whatever other tests ran before.
    services.common.loop_lag,
    services.common.metrics,
    services.embedder.metrics,
    services.scheduler.metrics,
    services.selector.metrics,
)
# The series names each kind of metric family exposes.
SERIES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "info": ("_info",),
}
METRIC_NAME = re.compile(r"\b((?:datapool|process)_[a-z0-9_]+)\b")


def exported_series() -> dict[str, str]:
    """Every series name in the default registry, with its family's type."""
    series: dict[str, str] = {}
    for family in REGISTRY.collect():
        for suffix in SERIES.get(family.type, ("",)):
            series[family.name + suffix] = family.type
        for sample in family.samples:
            series.setdefault(sample.name, family.type)
    return series


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query, rows' nested panels included."""
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            queries += [(inner["title"], t["expr"]) for t in inner.get("targets", [])]
    queries.append(("$namespace", board["templating"]["list"][1]["query"]["query"]))
    return queries


def test_every_dashboard_query_names_only_exported_metrics() -> None:
    exported = exported_series()
    queries = dashboard_queries()
    assert len(queries) > 15
    for title, expr in queries:
        names = METRIC_NAME.findall(expr)
        assert names, f"panel {title!r}: no datapool_ or process_ metric in {expr!r}"
        unknown = sorted(set(names) - set(exported))
        assert not unknown, f"panel {title!r}: {unknown} are not exported (query {expr!r})"


def test_every_datapool_metric_has_a_panel() -> None:
    used = {name for _, expr in dashboard_queries() for name in METRIC_NAME.findall(expr)}
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("datapool_")}
    missing = sorted(f for f in families if not any(u.startswith(f) for u in used))
    assert not missing, f"no dashboard panel shows {missing}"


def test_the_embedder_autoscaler_scales_on_a_gauge_the_embedders_export() -> None:
    exported = exported_series()
    for values in (CHART / "values.yaml", CHART / "ci" / "gpu-values.yaml"):
        metric = yaml.safe_load(values.read_text())["embedder"]["autoscaling"]["metric"]
        assert exported.get(metric) == "gauge", f"{values.name}: embedder.autoscaling.metric {metric!r}"
