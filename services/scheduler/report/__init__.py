"""The run's reports in the pool datasource: report.json and a self-contained report.html.

They live under `reports/<run id>/`, outside `frames/`, whose objects no manifest names
are collected by gc.
"""

from __future__ import annotations

REPORTS_PREFIX = "reports/"


def report_key(run_id: str, name: str) -> str:
    return f"{REPORTS_PREFIX}{run_id}/{name}"
