"""Each service refuses to start without an internal token, unless told explicitly to run open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEDULER_ARGS = ["--state-dir", "unused", "--selector", "127.0.0.1:1", "--embedder", "127.0.0.1:2"]


def start(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    extra = SCHEDULER_ARGS if module == "services.scheduler" else []
    return subprocess.run(
        [sys.executable, "-m", module, "--port", "0", *extra, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("module", ["services.selector", "services.embedder", "services.scheduler"])
def test_a_service_without_an_internal_token_refuses_to_start_naming_the_flag(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAPOOL_INTERNAL_TOKEN_FILE", raising=False)
    done = start(module)
    assert done.returncode == 2, done.stderr
    assert (
        "no internal token: pass --internal-token-file FILE or set $DATAPOOL_INTERNAL_TOKEN_FILE"
        in done.stderr
    )
    assert "--insecure-no-internal-token" in done.stderr


@pytest.mark.parametrize("content", ["", "short", "two words-that-are-long-enough"])
def test_an_unusable_token_file_is_refused_naming_the_file(content: str, tmp_path: Path) -> None:
    token_file = tmp_path / "internal.token"
    token_file.write_text(content)
    done = start("services.selector", "--internal-token-file", str(token_file))
    assert done.returncode == 2
    assert f"the internal token file {token_file} must hold one token" in done.stderr


def test_a_token_file_and_the_insecure_flag_together_are_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "internal.token"
    token_file.write_text("x" * 40)
    done = start(
        "services.selector", "--internal-token-file", str(token_file), "--insecure-no-internal-token"
    )
    assert done.returncode == 2
    assert "not both" in done.stderr
