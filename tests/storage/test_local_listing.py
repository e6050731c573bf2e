"""A local folder's listing names the entries it cannot read instead of failing on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from datapool.storage.local import LocalStore


def listing(root: Path) -> dict[str, str]:
    return {o.key: o.unreadable for o in LocalStore(root).list()}


def test_symlink_loops_and_links_to_nothing_are_listed_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"v")
    (tmp_path / "sub" / "b.mp4").write_bytes(b"v")
    (tmp_path / "sub" / "loop").symlink_to("..")
    (tmp_path / "self.mp4").symlink_to("self.mp4")
    (tmp_path / "dangling.mp4").symlink_to("nothing")
    assert listing(tmp_path) == {
        "a.mp4": "",
        "dangling.mp4": "a symbolic link to nothing",
        "self.mp4": "cannot be read: Too many levels of symbolic links",
        "sub/b.mp4": "",
        "sub/loop/": "a symbolic link loop (a folder inside itself)",
    }
    assert [o.key for o in LocalStore(tmp_path).list("sub/b")] == ["sub/b.mp4"]


# Permissions do not bind root: the child then lists as an unprivileged user (nobody).
_LIST_AS_CHILD = """
import json, os, sys
from datapool.storage.local import LocalStore
if os.getuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
print(json.dumps({o.key: o.unreadable for o in LocalStore(sys.argv[1]).list()}))
"""


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    # pytest's tmp_path is private to its user; the child below may run as another one.
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        yield Path(d)


def test_unreadable_folders_and_files_are_listed_as_unreadable(world_readable_dir: Path) -> None:
    root = world_readable_dir
    (root / "ok.mp4").write_bytes(b"v")
    (root / "secret.mp4").write_bytes(b"v")
    (root / "locked").mkdir()
    (root / "locked" / "c.mp4").write_bytes(b"v")
    for p in (root / "ok.mp4", root / "secret.mp4", root / "locked" / "c.mp4"):
        p.chmod(0o644)
    (root / "secret.mp4").chmod(0)
    (root / "locked").chmod(0)
    out = subprocess.run(
        [sys.executable, "-c", _LIST_AS_CHILD, str(root)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(out.stdout) == {
        "locked/": "the folder cannot be listed: Permission denied",
        "ok.mp4": "",
        "secret.mp4": "cannot be read: permission denied",
    }
