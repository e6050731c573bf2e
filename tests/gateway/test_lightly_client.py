"""Lightly's own client (`lightly==1.5.26`, in its own venv) runs the Lightly documentation's datapool
example against `datapool up --http-port`, on S3 (keys and a delegated role), GCS and Azure emulators
that the services reach through endpoint variables only; and bad input gets the exceptions the Lightly
client raises for it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from emulators import AZURE_ACCOUNT, GCS_PROJECT, S3_REGION
from gateway_support import HERE, GatewayStack, LightlyRunner, lightly_env, lightly_python, log_tails

from datapool.samples import make_video
from datapool.storage import open_store
from datapool.v1 import common_pb2

pytestmark = pytest.mark.e2e
FRAMES = 12
TOL = 1e-5
DOCS = "docs_example/"
# The published example (docs_example/SOURCE.md) creates the dataset and sets both datasources in
# one file per store; its delegated-role variant is reconstructed in two.
DATASOURCE_SNIPPETS = {
    "s3": [DOCS + "python_create_dataset_s3_example.py.tmpl"],
    "s3-role": [DOCS + "create_dataset.py.tmpl", DOCS + "datasource_s3_delegated.py.tmpl"],
    "gcs": [DOCS + "python_create_dataset_gcs_example.py.tmpl"],
    "azure": [DOCS + "python_create_dataset_azure_example.py.tmpl"],
}
DISTANCE_01 = '"stopping_condition_minimum_distance": 0.1'


def placeholders(kind: str, bucket: common_pb2.StoreLocation, tmp: Path) -> dict[str, str]:
    """The example's placeholders, filled with an emulator bucket's name and keys."""
    if kind in ("s3", "s3-role"):
        s3 = bucket.s3
        values = {"s3://bucket/": f"s3://{s3.bucket}/", "eu-central-1": S3_REGION}
        if kind == "s3":
            values["S3-ACCESS-KEY"] = s3.access_key.access_key_id
            values["S3-SECRET-ACCESS-KEY"] = s3.access_key.secret_access_key
        else:
            values["S3-ROLE-ARN"] = s3.delegated_role.role_arn
            values["S3-EXTERNAL-ID"] = s3.delegated_role.external_id
        return values
    if kind == "gcs":
        # A service-account key file as the docs read it; with STORAGE_EMULATOR_HOST set the services
        # connect anonymously, as google-cloud-storage does for emulators.
        key = tmp / "credentials.json"
        key.write_text(json.dumps({"type": "service_account", "project_id": GCS_PROJECT}))
        return {
            "gs://bucket/": f"gs://{bucket.gcs.bucket}/",
            "PROJECT-ID": GCS_PROJECT,
            "credentials_read.json": str(key),
            "credentials_write.json": str(key),
        }
    az = bucket.azure
    return {"my-container/": f"{az.container}/", "ACCOUNT-NAME": AZURE_ACCOUNT, "SAS-TOKEN": az.sas_token}


def with_prefix(bucket: common_pb2.StoreLocation, prefix: str) -> common_pb2.StoreLocation:
    loc = common_pb2.StoreLocation()
    loc.CopyFrom(bucket)
    getattr(loc, str(loc.WhichOneof("kind"))).prefix = prefix
    return loc


def upload_videos(location: common_pb2.StoreLocation, tmp: Path, seeds: list[int]) -> None:
    store = open_store(location)
    for seed in seeds:
        path = make_video(tmp / f"campus{seed}-c0.mp4", scene_seed=seed, n_frames=FRAMES)
        store.put(f"campus{seed}-c0.mp4", path.read_bytes())


def embeddings(rows: list[list[str]]) -> dict[str, np.ndarray]:
    header, body = rows[0], rows[1:]
    assert header[0] == "filenames" and header[-1] == "labels"
    assert header[1:-1] == [f"embedding_{i}" for i in range(len(header) - 2)]
    out = {row[0]: np.array([float(x) for x in row[1:-1]]) for row in body}
    assert len(out) == len(body), "a frame is in the CSV twice"
    return out


def min_distance(a: np.ndarray, b: np.ndarray | None = None) -> float:
    if len(a) == 0 or (b is not None and len(b) == 0) or (b is None and len(a) < 2):
        return float("inf")
    d = np.sqrt((((a[:, None, :]) - (a if b is None else b)[None, :, :]) ** 2).sum(-1))
    if b is None:
        d[np.diag_indices(len(a))] = np.inf
    return float(d.min())


def processed(result: dict[str, Any]) -> set[str]:
    return {f["path"] for f in result["report"]["files"]["processed"]}


def check_run(result: dict[str, Any], stack: GatewayStack) -> list[str]:
    """A completed run whose tag (if it added frames) exports exactly its picks; returns them."""
    print(f"run {result['run_id']}: {result['seconds']}; report seconds {result['report'].get('seconds')}")
    assert result["ended_successfully"], result["message"] + log_tails(stack)
    assert result["state"] == result["run_state"] == "COMPLETED"
    tags = [t["name"] for t in result["tags"]]
    assert tags[-1] == "initial-tag"
    pool = embeddings(result["csv"])
    assert sorted(result["filenames"]["initial-tag"]) == sorted(pool)
    assert result["tags"][-1]["tot_size"] == len(pool)
    assert result["worker_ids"] == [result["registered_worker"]]
    # Scheduled runs and runs as the scheduler lists them: this one has ended (DONE, newest).
    assert result["scheduled_unfinished"] == []
    assert [result["run_id"], result["run_id"]] in result["scheduled_done"]
    assert result["dataset_runs"][-1] == result["run_id"] and result["run_id"] in result["all_runs"]
    picks = result["report"]["frames"]["selected"]
    if not picks:
        assert result["run_tags"] == []
        return []
    assert len(result["run_tags"]) == 1
    new: list[str] = result["filenames"][result["run_tags"][0]]
    assert len(new) == picks
    return new


def check_datasource(got: dict[str, Any], bucket: common_pb2.StoreLocation, purpose: str) -> None:
    """get_datasource reads back the input location, with no credential in it."""
    kind = str(bucket.WhichOneof("kind"))
    inner = getattr(bucket, kind)
    assert got["purpose"] == purpose, got
    assert got["fullPath"].endswith(f"{inner.container if kind == 'azure' else inner.bucket}/input/"), got
    secrets = [inner.sas_token] if kind == "azure" else []
    if kind == "s3":
        auth = inner.access_key if inner.WhichOneof("auth") == "access_key" else inner.delegated_role
        secrets = [getattr(auth, f, "") for f in ("access_key_id", "secret_access_key", "external_id")]
    for secret in filter(None, secrets):
        assert secret not in json.dumps(got), got


@pytest.mark.parametrize("kind", ["s3", "s3-role", "gcs", "azure"])
def test_the_docs_datapool_example_runs_unchanged_through_the_lightly_client(
    lightly_stack: GatewayStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    tmp_path: Path,
    kind: str,
) -> None:
    bucket = make_location(kind)
    inp = with_prefix(bucket, "input/")
    upload_videos(inp, tmp_path, [0, 1, 2])
    common = {
        "MY_LIGHTLY_TOKEN": lightly_stack.token,
        "YOUR_TOKEN": lightly_stack.token,
        "pedestrian-videos-datapool": f"videos-{kind}-{tmp_path.name}",
    }
    first = {**common, **placeholders(kind, bucket, tmp_path)}
    second = {**common, DISTANCE_01: '"stopping_condition_minimum_distance": 0.2'}
    third = {**second, '"use_datapool": True,': '"use_datapool": True, "datasource": {"process_all": True},'}
    spec = {
        "steps": [
            {
                "snippets": [*DATASOURCE_SNIPPETS[kind], DOCS + "schedule_run.py.tmpl"],
                "replacements": first,
            },
            {"snippets": [DOCS + "schedule_run.py.tmpl"], "replacements": second},
            {"snippets": [DOCS + "schedule_run.py.tmpl"], "replacements": third},
        ]
    }
    runner = LightlyRunner(lightly_stack, spec, tmp_path)
    try:
        # Run 1: three videos, 0.1.
        r1 = runner.next_result()
        new1 = check_run(r1, lightly_stack)
        check_datasource(r1["datasource"], bucket, "INPUT")
        emb1 = embeddings(r1["csv"])
        assert processed(r1) == {f"campus{i}-c0.mp4" for i in range(3)}
        assert sorted(new1) == sorted(emb1) and emb1
        assert min_distance(np.stack(list(emb1.values()))) >= 0.1 - TOL

        # Run 2: two videos added, 0.2; only they are processed.
        upload_videos(inp, tmp_path, [3, 4])
        runner.proceed()
        r2 = runner.next_result()
        new2 = check_run(r2, lightly_stack)
        emb2 = embeddings(r2["csv"])
        assert processed(r2) == {"campus3-c0.mp4", "campus4-c0.mp4"}
        assert set(emb2) == set(emb1) | set(new2)
        if new2:
            v2 = np.stack([emb2[n] for n in new2])
            assert min_distance(v2, np.stack(list(emb1.values()))) >= 0.2 - TOL
            assert min_distance(v2) >= 0.2 - TOL

        # Run 3: process_all examines every video again; picks keep 0.2 from the whole pool.
        runner.proceed()
        r3 = runner.next_result()
        new3 = check_run(r3, lightly_stack)
        emb3 = embeddings(r3["csv"])
        assert processed(r3) == {f"campus{i}-c0.mp4" for i in range(5)}
        assert set(emb3) == set(emb2) | set(new3)
        if new3:
            v3 = np.stack([emb3[n] for n in new3])
            assert min_distance(v3, np.stack(list(emb2.values()))) >= 0.2 - TOL
        run_ids = [r["run_id"] for r in (r3, r2, r1)]
        assert [t["run_id"] for t in r3["tags"][:-1]] == [
            r for r in run_ids if r in {t["run_id"] for t in r3["tags"]}
        ]
    finally:
        runner.close()


def test_an_input_output_datasource_keeps_its_pool_at_the_lightly_prefix_never_listed_as_input(
    lightly_stack: GatewayStack,
    make_location: Callable[..., common_pb2.StoreLocation],
    tmp_path: Path,
) -> None:
    bucket = make_location("s3")
    upload_videos(with_prefix(bucket, "input/"), tmp_path, [0])
    replacements = {
        "MY_LIGHTLY_TOKEN": lightly_stack.token,
        "pedestrian-videos-datapool": f"videos-io-{tmp_path.name}",
        **placeholders("s3", bucket, tmp_path),
    }
    first = [DOCS + "create_dataset.py.tmpl", "input_output_s3.py.tmpl", DOCS + "schedule_run.py.tmpl"]
    again = [DOCS + "schedule_run.py.tmpl"]
    steps = [
        {"snippets": first, "replacements": replacements},
        {"snippets": again, "replacements": replacements},
    ]
    runner = LightlyRunner(lightly_stack, {"steps": steps}, tmp_path)
    try:
        r1 = runner.next_result()
        new1 = check_run(r1, lightly_stack)
        assert processed(r1) == {"campus0-c0.mp4"} and new1
        check_datasource(r1["datasource"], bucket, "INPUT_OUTPUT")
        pool_keys = [o.key for o in open_store(with_prefix(bucket, "input/.lightly/")).list()]
        assert any(k.startswith("frames/") for k in pool_keys), pool_keys
        # The second run lists the input again: the pool's frames under .lightly/ are not input.
        runner.proceed()
        r2 = runner.next_result()
        check_run(r2, lightly_stack)
        assert processed(r2) == set()
        assert (r2["report"]["files"]["listed"], r2["report"]["files"]["new"]) == (1, 0)
        assert sorted(embeddings(r2["csv"])) == sorted(new1)
    finally:
        runner.close()


def test_bad_input_gets_the_exceptions_the_lightly_client_raises(
    lightly_stack: GatewayStack, tmp_path: Path
) -> None:
    out = subprocess.run(
        [str(lightly_python()), str(HERE / "lightly_bad_input.py"), f"bad-input-{tmp_path.name}"],
        capture_output=True,
        text=True,
        env=lightly_env(lightly_stack),
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    cases = json.loads(out.stdout.strip().splitlines()[-1])["cases"]
    print(json.dumps(cases, indent=1))

    def check(case: str, status: int, *words: str) -> None:
        """The Lightly client raises its PrettyPrintApiException (an ApiException) with the status,
        and prints our message as its "Error Message:" line."""
        got = cases[case]
        assert (got["exception"], got["is_api_exception"], got["status"]) == (
            "PrettyPrintApiException",
            True,
            status,
        ), (case, got)
        for word in words:
            assert word in got["body"], (case, word, got)
        assert f"Error Message: {json.loads(got['body'])['error']}" in got["text"]

    check("malformed_body", 400, "MALFORMED_REQUEST", "body.name")
    check("unknown_dataset_id", 404, "0123456789abcdef01234567")
    check("wrong_token", 403, "token")
    check("unsupported_worker_key", 400, "not supported by datapool", "worker_config.pretagging")
    check("enable_training", 400, "worker_config.enable_training")
    check("lightly_config", 400, "not supported by datapool", "lightly_config")
    check("unsupported_endpoint", 404, "not supported by datapool", "DELETE /v1/datasets/")
    check("datasource_not_set", 404, "NOT_FOUND", "has no INPUT datasource")
    check("bad_resource_path", 400, "fullPath", "Not_A_Bucket")
    # The token travels in the query string; the gateway's access log masks it (and read-URL tickets).
    log = (lightly_stack.state_dir / "logs" / "gateway.log").read_text()
    assert "token=REDACTED" in log
    assert lightly_stack.token not in log and "not-the-token" not in log
    assert "ticket=gAAAA" not in log  # Fernet tickets of read URLs
    # The published run script predates lightly 1.5: its own client refuses it before sending it.
    published = cases["published_run_script"]
    assert published["exception"] == "ValueError", published
    for field in ("DockerWorkerConfigV4Docker", "enableCorruptnessCheck", "removeExactDuplicates"):
        assert field in published["text"], published
    # The client's own check turns the 404 into a ValueError naming the id.
    unknown = cases["set_unknown_dataset_id"]
    assert unknown["exception"] == "ValueError" and "does not exist" in unknown["text"], unknown
