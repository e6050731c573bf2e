"""Runs the Lightly documentation's datapool example with the `lightly` package, in ITS OWN venv.

Started by test_lightly_client.py as `.lightly-venv/bin/python lightly_runner.py SPEC.json`, with only
LIGHTLY_SERVER_LOCATION and LIGHTLY_TOKEN in its environment. For each step of the spec it runs the
example's snippets from docs_example/ (the documentation's text; the test replaces only placeholders
such as "s3://bucket/input/" with the emulators' buckets and keys), then reads the results back
through the Lightly client itself and prints them as one JSON line. Before each step after the first
it waits for a line on stdin, so the test can add videos between runs.

The one change to the client: its run-info generator polls every 30 s (to spare Lightly's servers),
which would make each run of this test last 30 s; the poll interval is shortened to 0.2 s.
"""
# This file runs under the lightly venv, not ours: `lightly` is not installed where mypy checks it.
# mypy: ignore-errors

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _snippet(name: str, replacements: dict[str, str]) -> str:
    text = (HERE / name).read_text()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    return text


def _results(namespace: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """What the run left, read through the Lightly client."""
    client = namespace["client"]
    run_info = namespace["run_info"]
    run = client.get_compute_worker_run_from_scheduled_run(scheduled_run_id=namespace["scheduled_run_id"])
    run_tags = [t.name for t in client.get_compute_worker_run_tags(run_id=run.id)]
    all_tags = client.get_all_tags()
    # The run's tag and the whole pool: each export lists the tags again (by name, then by id).
    exported = [*run_tags, "initial-tag"]
    filenames = {name: client.export_filenames_by_tag_name(tag_name=name).split("\n") for name in exported}
    csv_path = out_dir / f"embeddings-{run.id}.csv"
    client.download_embeddings_csv(output_path=str(csv_path))
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    client.download_compute_worker_run_artifacts(run=run, output_dir=str(out_dir / run.id))
    datasource = client.get_datasource().actual_instance.to_dict(by_alias=True)
    report = json.loads((out_dir / run.id / "report.json").read_text())
    return {
        "state": str(run_info.state),
        "message": run_info.message,
        "ended_successfully": run_info.ended_successfully(),
        "run_id": run.id,
        "run_state": str(run.state),
        "run_tags": run_tags,
        "tags": [{"name": t.name, "tot_size": t.tot_size, "run_id": t.run_id} for t in all_tags],
        "filenames": {k: [n for n in v if n] for k, v in filenames.items()},
        "csv": rows,
        "report": report,
        "datasource": datasource,
        "scheduled_unfinished": [r.id for r in client.get_scheduled_compute_worker_runs()],
        "scheduled_done": [
            (r.id, r.config_id) for r in client.get_scheduled_compute_worker_runs(state="DONE")
        ],
        "dataset_runs": [r.id for r in client.get_compute_worker_runs(dataset_id=client.dataset_id)],
        "all_runs": [r.id for r in client.get_compute_worker_runs()],
        "registered_worker": client.register_compute_worker(name="datapool-test"),
        "worker_ids": client.get_compute_worker_ids(),
    }


def main() -> None:
    import lightly.api.api_workflow_compute_worker as compute_worker

    compute_worker.time = types.SimpleNamespace(sleep=lambda s: time.sleep(min(s, 0.2)), time=time.time)
    spec = json.loads(Path(sys.argv[1]).read_text())
    out_dir = Path(tempfile.mkdtemp(prefix="lightly-runner-"))
    for i, step in enumerate(spec["steps"]):
        if i:
            sys.stdin.readline()
        namespace: dict[str, Any] = {"__name__": "__main__"}
        t0 = time.monotonic()
        for name in step["snippets"]:
            exec(compile(_snippet(name, step["replacements"]), name, "exec"), namespace)
        t1 = time.monotonic()
        results = _results(namespace, out_dir)
        results["seconds"] = {"example": t1 - t0, "checks": time.monotonic() - t1}
        print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
