"""Secrets reach the pods only by reference: nothing secret is ever rendered into a manifest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from chart import (
    CI_VALUES,
    REQUIRED,
    RenderError,
    Settings,
    arg,
    containers,
    of_kind,
    pod_spec,
    render,
    render_text,
    workload,
)

SENTINEL = "sk-live-SENTINEL-5f2b9c0d7e"
# Where a user might (wrongly) put a secret itself instead of a Secret's name.
MISPLACED_SECRETS = {
    "secrets.apiToken.value": SENTINEL,
    "secrets.apiToken.token": SENTINEL,
    "secrets.internalToken.value": SENTINEL,
    "secrets.secretKey.value": SENTINEL,
    "secrets.cloudCredentials.AWS_SECRET_ACCESS_KEY": SENTINEL,
    "secrets.cloudCredentials.sasToken": SENTINEL,
    "serviceAccount.token": SENTINEL,
    "token": SENTINEL,
    "apiToken": SENTINEL,
    "secretKey": SENTINEL,
    "gateway.token": SENTINEL,
}
SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSWORD|KEY|CREDENTIAL|SAS", re.IGNORECASE)


def _env(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for d in of_kind(manifests, "Deployment") for c in containers(d) for e in c.get("env", [])]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults")
def test_a_secret_put_into_values_never_reaches_a_manifest(values: Path | None) -> None:
    settings: Settings = {**MISPLACED_SECRETS, "gateway.enabled": True, "metrics.enabled": True}
    assert SENTINEL not in render_text(values, settings)


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults")
def test_the_chart_renders_no_secret_and_no_secret_looking_environment_value(values: Path | None) -> None:
    manifests = render(values)
    assert of_kind(manifests, "Secret") == []
    for e in _env(manifests):
        if SECRET_ENV.search(e["name"]) and not e["name"].endswith("_FILE"):
            assert "value" not in e and "secretKeyRef" in e["valueFrom"], e


def test_each_secret_reaches_only_the_service_that_needs_it_by_reference() -> None:
    settings = {
        "secrets.secretKey.existingSecret": "dp-fernet",
        "secrets.secretKey.key": "fernet",
        "secrets.cloudCredentials.existingSecret": "dp-cloud",
    }
    manifests = render(settings=settings)
    scheduler = workload(manifests, "scheduler")
    (sc,) = containers(scheduler)
    # The clients' tokens: a mounted file (re-read on change: rotation), not an environment variable.
    (tokens,) = [v for v in pod_spec(scheduler)["volumes"] if v["name"] == "api-token"]
    api_secret = REQUIRED["secrets.apiToken.existingSecret"]
    assert tokens["secret"]["secretName"] == api_secret
    assert tokens["secret"]["items"] == [{"key": "token", "path": "tokens"}]
    (mount,) = [m for m in sc["volumeMounts"] if m["name"] == "api-token"]
    assert mount["readOnly"] is True
    assert arg(sc, "--token-file") == mount["mountPath"] + "/tokens"
    assert "DATAPOOL_TOKEN" not in str(sc["env"])
    (fernet,) = [v for v in pod_spec(scheduler)["volumes"] if v["name"] == "secret-key"]
    assert fernet["secret"]["secretName"] == "dp-fernet"
    assert fernet["secret"]["items"] == [{"key": "fernet", "path": "secret.key"}]
    (mount,) = [m for m in sc["volumeMounts"] if m["name"] == "secret-key"]
    assert mount["readOnly"] is True
    assert arg(sc, "--secret-key-file") == mount["mountPath"] + "/secret.key"
    for name in ("selector", "embedder"):
        d = workload(manifests, name)
        (c,) = containers(d)
        # The Fernet key and the clients' token stay with the scheduler.
        assert "dp-fernet" not in str(d) and "DATAPOOL_TOKEN" not in str(c.get("env"))
        assert api_secret not in str(d)
    for name in ("scheduler", "selector", "embedder"):
        d = workload(manifests, name)
        (c,) = containers(d)
        (internal,) = [v for v in pod_spec(d)["volumes"] if v["name"] == "internal-token"]
        assert internal["secret"]["secretName"] == REQUIRED["secrets.internalToken.existingSecret"]
        (path,) = [e["value"] for e in c["env"] if e["name"] == "DATAPOOL_INTERNAL_TOKEN_FILE"]
        (mount,) = [m for m in c["volumeMounts"] if m["name"] == "internal-token"]
        assert path == mount["mountPath"] + "/token" and mount["readOnly"] is True
        assert c["envFrom"] == [{"secretRef": {"name": "dp-cloud"}}]


def test_without_the_internal_token_secret_the_chart_refuses_to_render_and_says_which_value() -> None:
    with pytest.raises(RenderError, match=r"secrets\.internalToken\.existingSecret"):
        render(settings={"secrets.internalToken.existingSecret": ""})


def test_without_an_api_token_the_chart_refuses_unless_unauthenticated_is_chosen() -> None:
    with pytest.raises(RenderError, match=r"secrets\.apiToken\.existingSecret"):
        render(settings={"secrets.apiToken.existingSecret": ""})
    manifests = render(settings={"secrets.apiToken.existingSecret": "", "secrets.allowUnauthenticated": True})
    (sc,) = containers(workload(manifests, "scheduler"))
    assert "DATAPOOL_TOKEN" not in str(sc["env"])
    assert not [a for a in sc["args"] if a.startswith("--token-file")]


def test_the_service_account_carries_the_workload_identity_annotation_and_mounts_no_api_token() -> None:
    role = "arn:aws:iam::111122223333:role/datapool"
    manifests = render(settings={"serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn": role})
    (account,) = of_kind(manifests, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    for d in of_kind(manifests, "Deployment"):
        assert pod_spec(d)["serviceAccountName"] == account["metadata"]["name"]
        assert pod_spec(d)["automountServiceAccountToken"] is False
