"""Test modules stand alone: unique names, and shared code in support modules, not in other tests.

Each test folder is its own import root (pytest's default "prepend" import mode, no __init__.py),
so two test modules of one name in different folders stop the whole suite at collection, and a
test module imported by another runs its module-level code twice and couples unrelated tests.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from source_files import ROOT, parsed, python_files, where


def _is_test_module(name: str) -> bool:
    return name.split(".")[0].startswith("test_")


def test_no_two_test_modules_share_a_name() -> None:
    folders: defaultdict[str, list[str]] = defaultdict(list)
    for path in python_files("tests"):
        if _is_test_module(path.stem):
            folders[path.name].append(str(path.parent.relative_to(ROOT)))
    shared = {name: places for name, places in folders.items() if len(places) > 1}
    assert not shared, f"test modules with the same name in several folders: {shared}"


def test_no_test_module_imports_another_test_module() -> None:
    imports: list[str] = []
    for path in python_files("tests", "bench"):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            imports += [f"{where(path, node)} imports {name}" for name in names if _is_test_module(name)]
    assert not imports, "move what they share into a support module:\n" + "\n".join(imports)
