"""API tokens from a file: several at once, re-read when the file changes or on SIGHUP, and a
broken update keeps the tokens read before (it neither locks clients out nor lets anyone in)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import grpc
import pytest

from datapool.channels import make_channel
from services.common.server import ServiceServer
from services.common.token_file import TokenFile, TokenFileError
from services.scheduler.auth import user_token_interceptor

A = "token-aaaaaaaaaaaaaaaa"
B = "token-bbbbbbbbbbbbbbbb"


def test_every_token_line_is_accepted_and_comments_are_not(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# rotated 2026-12-01\n{A}\n\n  {B}  \n")
    assert TokenFile(path)() == (A.encode(), B.encode())


def test_a_changed_file_is_read_again_on_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{A}\n")
    tokens = TokenFile(path)
    assert tokens() == (A.encode(),)
    # Replaced the way a Kubernetes Secret volume does it: a new file renamed over the old one.
    new = tmp_path / "tokens.new"
    new.write_text(f"{B}\n")
    os.replace(new, path)
    assert tokens() == (B.encode(),)


def test_sighup_reads_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{A}\n")
    tokens = TokenFile(path)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        tokens.reload_on_sighup()
        path.write_text(f"{B}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        # Read by the signal handler itself, before any call asks.
        assert tokens._tokens == (B.encode(),)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_an_update_that_breaks_the_file_keeps_the_tokens_read_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{A}\n")
    tokens = TokenFile(path)
    path.write_text("\n# nothing yet\n")
    assert tokens() == (A.encode(),)
    path.unlink()
    assert tokens() == (A.encode(),)
    assert f"the token file {path} holds no token" in caplog.text
    path.write_text(f"{B}\n")
    assert tokens() == (B.encode(),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no token"),
        ("short\n", "line 1: a token is one word of at least 16 characters"),
        (f"{A}\ntwo words-and-more-text\n", "line 2: a token is one word"),
    ],
)
def test_a_bad_file_at_start_is_refused_naming_it_and_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokenFileError, match=message):
        TokenFile(path)
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        TokenFile(tmp_path / "missing")


def test_the_scheduler_accepts_every_token_in_the_file_and_follows_its_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{A}\n{B}\n")
    echo = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, _context: request)}
    )
    interceptor = user_token_interceptor(TokenFile(path))
    server = ServiceServer(
        "test", "127.0.0.1:0", lambda s: s.add_generic_rpc_handlers((echo,)), [], interceptors=[interceptor]
    )
    server.start()

    def answers(token: str) -> bool:
        with make_channel(f"127.0.0.1:{server.port}") as channel:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Echo/Echo")
            try:
                call(b"hi", timeout=10, metadata=(("authorization", f"Bearer {token}"),))
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
                return False
            return True

    try:
        assert answers(A) and answers(B) and not answers("token-cccccccccccccccc")
        path.write_text(f"{B}\n")
        assert answers(B) and not answers(A)
    finally:
        server.stop(0)
