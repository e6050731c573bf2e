"""`datapool up` gives its services one private internal token, by file, and it holds."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import grpc
import pytest
from e2e_support import RunningStack

from datapool.channels import make_channel
from datapool.internal_token import read_token_file
from datapool.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc, selector_pb2, selector_pb2_grpc
from services.common.auth import with_token


def internal_addresses(stack: RunningStack) -> list[str]:
    ready = next(line for line in stack.output if "ready on" in line)
    return re.findall(r"(?:selector|embedders) ([\d.]+:\d+)", ready)


def test_the_internal_token_file_is_private(stack: RunningStack) -> None:
    path = stack.state_dir / "internal.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_internal_token_is_on_no_command_line_and_in_no_log(stack: RunningStack) -> None:
    token = read_token_file(stack.state_dir / "internal.token")
    commands = [
        p.read_bytes()
        for p in Path("/proc").glob("[0-9]*/cmdline")
        if str(stack.state_dir).encode() in _read(p)
    ]
    assert len(commands) >= 3  # scheduler, selector, embedder
    assert not [c for c in commands if token.encode() in c]
    for log in (stack.state_dir / "logs").glob("*.log"):
        assert token not in log.read_text(errors="replace"), log
    assert token not in "".join(stack.output)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_the_selector_and_embedder_of_datapool_up_refuse_calls_without_the_token(
    stack: RunningStack, tmp_path: Path
) -> None:
    selector, embedder = internal_addresses(stack)[:2]
    pool = selector_pb2.GetPoolRequest(pool=_local(tmp_path))
    with make_channel(selector) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            selector_pb2_grpc.SelectorStub(channel).GetPool(pool, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        token = read_token_file(stack.state_dir / "internal.token")
        summary = selector_pb2_grpc.SelectorStub(with_token(channel, token)).GetPool(pool, timeout=30)
        assert summary.version == 0
    with make_channel(embedder) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            embedder_pb2_grpc.EmbedderStub(channel).GetModelInfo(
                embedder_pb2.GetModelInfoRequest(), timeout=30
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _local(root: Path) -> common_pb2.StoreLocation:
    return common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(root)))
