"""Bad input through the `lightly` client (run in ITS OWN venv, like lightly_runner.py): prints, for
each case, the exception the Lightly client raised, its HTTP status and the gateway's message."""
# This file runs under the lightly venv, not ours: `lightly` is not installed where mypy checks it.
# mypy: ignore-errors

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

UNKNOWN_DATASET = "0123456789abcdef01234567"
HERE = Path(__file__).resolve().parent


def _outcome(fn: Callable[[], Any]) -> dict[str, Any]:
    try:
        fn()
    except Exception as e:  # the point is to report whatever the client raised
        status = getattr(e, "status", None)
        body = getattr(e, "body", None)
        from lightly.openapi_generated.swagger_client.rest import ApiException

        return {
            "exception": type(e).__name__,
            "is_api_exception": isinstance(e, ApiException),
            "status": status,
            "body": body,
            "text": str(e)[:2000],
        }
    return {"exception": None}


def main() -> None:
    from lightly.api import ApiWorkflowClient
    from lightly.openapi_generated.swagger_client.models import DatasetCreateRequest, DatasourcePurpose

    dataset_name = sys.argv[1]
    client = ApiWorkflowClient()  # LIGHTLY_TOKEN from the environment
    client.create_dataset(dataset_name=dataset_name)

    def malformed_body() -> None:
        # The generated models validate before sending; construct() skips that, as a hand-written
        # or outdated client would: the body has no "name".
        body = DatasetCreateRequest.construct(type="Videos")
        client._datasets_api.create_dataset(dataset_create_request=body)

    def unknown_dataset_id() -> None:
        ApiWorkflowClient(dataset_id=UNKNOWN_DATASET).get_all_tags()

    def set_unknown_dataset_id() -> None:
        client.dataset_id = UNKNOWN_DATASET

    def wrong_token() -> None:
        ApiWorkflowClient(token="not-the-token").get_datasets()

    def published_run_script() -> None:
        # The Lightly docs' published datapool run script (docs_example/SOURCE.md), verbatim.
        text = (HERE / "docs_example" / "python_run_datapool_example.py.tmpl").read_text()
        text = text.replace("YOUR_TOKEN", os.environ["LIGHTLY_TOKEN"])
        text = text.replace("pedestrian-videos-datapool", dataset_name)
        exec(compile(text, "python_run_datapool_example.py", "exec"), {"__name__": "__main__"})

    def unsupported_worker_key() -> None:
        client.schedule_compute_worker_run(worker_config={"pretagging": True})

    def enable_training() -> None:
        client.schedule_compute_worker_run(worker_config={"enable_training": True})

    def lightly_config() -> None:
        client.schedule_compute_worker_run(lightly_config={"loader": {"batch_size": 16}})

    def unsupported_endpoint() -> None:
        client.delete_dataset_by_id(client.dataset_id)

    def datasource_not_set() -> None:
        client.get_datasource()

    def bad_resource_path() -> None:
        client.set_s3_config("s3://Not_A_Bucket/x/", "us-east-1", "a", "s", purpose=DatasourcePurpose.INPUT)

    checks = [
        malformed_body,
        unknown_dataset_id,
        set_unknown_dataset_id,
        wrong_token,
        published_run_script,
        unsupported_worker_key,
        enable_training,
        lightly_config,
        unsupported_endpoint,
        datasource_not_set,
        bad_resource_path,
    ]
    cases = {fn.__name__: _outcome(fn) for fn in checks}
    print(json.dumps({"token_env": bool(os.environ.get("LIGHTLY_TOKEN")), "cases": cases}), flush=True)


if __name__ == "__main__":
    main()
