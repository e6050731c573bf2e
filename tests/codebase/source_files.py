"""The repository's own Python sources, for checks that read code instead of running it."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Installed trees (tests/emulators/node_modules) and protoc's output are nobody's hand-written code.
INSTALLED = {"node_modules", "__pycache__"}
GENERATED = ("datapool/v1/",)


def python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(ROOT / folder):
            dirnames[:] = sorted(d for d in dirnames if d not in INSTALLED)  # node_modules is huge
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if filename.endswith(".py") and not path.relative_to(ROOT).as_posix().startswith(GENERATED):
                    yield path


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
