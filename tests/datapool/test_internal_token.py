"""The internal token file: created private, reused, read back whole."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from datapool.internal_token import InternalTokenError, ensure_token_file, read_token_file


def test_a_new_token_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = ensure_token_file(tmp_path / "state" / "internal.token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_token_file(path)) >= 40


def test_an_existing_token_file_is_reused(tmp_path: Path) -> None:
    first = read_token_file(ensure_token_file(tmp_path / "internal.token"))
    assert read_token_file(ensure_token_file(tmp_path / "internal.token")) == first


def test_a_mounted_secret_with_a_trailing_newline_reads_as_the_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("a-token-from-a-kubernetes-secret\n")
    assert read_token_file(tmp_path / "token") == "a-token-from-a-kubernetes-secret"


def test_a_missing_token_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InternalTokenError, match=r"cannot read the internal token file .*nothing"):
        read_token_file(tmp_path / "nothing")
