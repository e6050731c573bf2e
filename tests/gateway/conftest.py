"""One `datapool up --http-port` for the gateway tests, its storage endpoints taken from the
environment only (the SDKs' standard variables and DATAPOOL_AZURE_BLOB_ENDPOINT)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulators import AZURE_ACCOUNT, Emulators
from gateway_support import GatewayStack, gateway_stack

TOKEN = "gateway-e2e-token"


def endpoint_env(emulators: Emulators) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": emulators.moto_url,
        "STORAGE_EMULATOR_HOST": emulators.gcs_url,
        "DATAPOOL_AZURE_BLOB_ENDPOINT": emulators.azure_url.replace(AZURE_ACCOUNT, "{account}"),
    }


@pytest.fixture(scope="module")
def lightly_stack(
    tmp_path_factory: pytest.TempPathFactory, emulators: Emulators, emulator_env: dict[str, str]
) -> Iterator[GatewayStack]:
    env = {**emulator_env, **endpoint_env(emulators)}
    with gateway_stack(tmp_path_factory.mktemp("gateway-stack"), TOKEN, env) as stack:
        yield stack
