"""The metrics every service exports, and the HTTP endpoint Prometheus scrapes them from.

prometheus-client keeps the metrics in its default registry and serves them (with its
process and Python collectors) from a thread; each service's own metrics live beside its
code (`services/<service>/metrics.py`). Names are `datapool_...`; the Grafana dashboard
(deploy/grafana/datapool.json) and the chart's embedder HPA use exactly these names.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, start_http_server

from datapool.storage import timing

log = logging.getLogger(__name__)

# Streaming calls (EmbedFile, Select) last as long as a file or a run: buckets up to 10 min.
RPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0)
STORAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RPC_REQUESTS = Counter(
    "datapool_rpc_requests",
    "gRPC calls this server answered, by full method name and status code.",
    ["method", "code"],
)
RPC_SECONDS = Histogram(
    "datapool_rpc_duration_seconds",
    "Seconds from a call's start to its status (a stream's last message), by method and code.",
    ["method", "code"],
    buckets=RPC_BUCKETS,
)
STORAGE_SECONDS = Histogram(
    "datapool_storage_request_duration_seconds",
    "Seconds per object-store request, by store kind (local, s3, gcs, azure), operation and outcome.",
    ["store", "operation", "outcome"],
    buckets=STORAGE_BUCKETS,
)


def observe_storage_request(kind: str, operation: str, seconds: float, ok: bool) -> None:
    STORAGE_SECONDS.labels(kind, operation, "ok" if ok else "error").observe(seconds)


def serve_metrics(host: str, port: int, service: str) -> int:
    """Serves /metrics on `host:port` from a daemon thread and starts timing store requests.

    Returns the bound port. Raises OSError when the port is taken.
    """
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_port)
    timing.set_request_observer(observe_storage_request)
    log.info("%s: Prometheus metrics on http://%s:%d/metrics", service, host, bound)
    return bound
