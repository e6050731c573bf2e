"""`datapool up --tls-dir`: TLS on every hop of a real stack, and API tokens rotated while it runs."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from e2e_support import RunningStack, run, running_stack, selection

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.channels import make_channel
from datapool.client_models import ApiError
from datapool.internal_token import read_token_file
from datapool.samples import make_video
from datapool.tls import channel_credentials
from datapool.v1 import common_pb2, selector_pb2, selector_pb2_grpc
from services.common.auth import with_token

pytestmark = pytest.mark.e2e
OLD_TOKEN = "old-token-0123456789abcdef"
NEW_TOKEN = "new-token-fedcba9876543210"


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("tls-stack")
    tokens = base / "tokens"
    tokens.write_text(f"# the API tokens clients may send\n{OLD_TOKEN}\n")
    env = {"DATAPOOL_TOKEN_FILE": str(tokens)}
    with running_stack(base, OLD_TOKEN, env, ("--tls-dir", str(base / "tls"))) as stack:
        yield stack


def tls_dir(stack: RunningStack) -> Path:
    return stack.state_dir.parent / "tls"


def internal_addresses(stack: RunningStack) -> list[str]:
    ready = next(line for line in stack.output if "ready on" in line)
    return re.findall(r"(?:selector|embedders) ([\d.]+:\d+)", ready)


def test_a_run_completes_with_tls_on_every_hop(tls_stack: RunningStack, tmp_path: Path) -> None:
    videos, pool = tmp_path / "videos", tmp_path / "pool"
    videos.mkdir()
    make_video(videos / "campus0-c0.mp4", scene_seed=0, n_frames=8)
    ca = tls_dir(tls_stack) / "ca.crt"
    assert any(f"DATAPOOL_CA_CERT={ca}" in line for line in tls_stack.output)
    with ApiWorkflowClient(token=OLD_TOKEN, address=tls_stack.address, ca_cert=ca) as client:
        client.create_dataset(dataset_name="tls", dataset_type=DatasetType.VIDEOS)
        client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
        client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
        # The scheduler reaches the embedder and the selector only over (mutual) TLS: see below.
        _, report = run(client, {"enable_training": False}, selection(0.0, n=3))
    assert report["frames"]["embedded"] == 8
    assert report["frames"]["selected"] == 3


def test_the_tls_keys_of_datapool_up_are_private(tls_stack: RunningStack) -> None:
    d = tls_dir(tls_stack)
    assert stat.S_IMODE((d / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((d / "ca.key").stat().st_mode) == 0o600
    assert {p.name for p in d.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}


def test_a_plaintext_client_is_told_the_scheduler_needs_tls(tls_stack: RunningStack) -> None:
    with (
        ApiWorkflowClient(token=OLD_TOKEN, address=tls_stack.address, ca_cert=None) as client,
        pytest.raises(ApiError) as refused,
    ):
        client.get_datasets()
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert f"{tls_stack.address} requires TLS" in refused.value.message
    assert "DATAPOOL_CA_CERT" in refused.value.message


def test_the_selector_refuses_plaintext_and_callers_without_a_client_certificate(
    tls_stack: RunningStack, tmp_path: Path
) -> None:
    selector = internal_addresses(tls_stack)[0]
    d = tls_dir(tls_stack)
    token = read_token_file(tls_stack.state_dir / "internal.token")
    request = selector_pb2.GetPoolRequest(
        pool=common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(tmp_path)))
    )
    without_cert = channel_credentials(d / "ca.crt")
    for credentials in (None, without_cert):
        with make_channel(selector, credentials=credentials) as channel:
            stub = selector_pb2_grpc.SelectorStub(with_token(channel, token))
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetPool(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # The scheduler's certificate (mutual TLS) and the internal token: served.
    mutual = channel_credentials(d / "ca.crt", d / "tls.crt", d / "tls.key")
    with make_channel(selector, credentials=mutual) as channel:
        assert (
            selector_pb2_grpc.SelectorStub(with_token(channel, token)).GetPool(request, timeout=10).version
            == 0
        )


def test_an_api_token_is_rotated_without_a_restart(tls_stack: RunningStack) -> None:
    tokens = tls_stack.state_dir.parent / "tokens"
    ca = tls_dir(tls_stack) / "ca.crt"

    def answers(token: str) -> bool:
        with ApiWorkflowClient(token=token, address=tls_stack.address, ca_cert=ca) as client:
            try:
                client.get_datasets()
            except ApiError as e:
                assert e.code == grpc.StatusCode.UNAUTHENTICATED, e
                return False
            return True

    assert answers(OLD_TOKEN) and not answers(NEW_TOKEN)
    # Overlap: both lines, both accepted.
    tokens.write_text(f"{OLD_TOKEN}\n{NEW_TOKEN}\n")
    assert answers(OLD_TOKEN) and answers(NEW_TOKEN)
    # The old one removed: refused from the next call on, with no restart in between.
    tokens.write_text(f"{NEW_TOKEN}\n")
    assert answers(NEW_TOKEN) and not answers(OLD_TOKEN)
    assert not answers("")
    scheduler_log = (tls_stack.state_dir / "logs" / "scheduler.log").read_text()
    assert "restart" not in "".join(tls_stack.output)
    assert "1 token(s) accepted" in scheduler_log
