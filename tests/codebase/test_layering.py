"""The services talk to each other only over gRPC: no service imports another one's code.

What two services both need (the pool format, vectors, storage) lives in `datapool/`, and what
every server needs in `services/common/`. An import from one service into another would make
them one deployable unit in disguise: the scheduler would load the selector's code, and a
change in one could break the other without any RPC changing.
"""

from __future__ import annotations

import ast
from pathlib import Path

from source_files import ROOT, parsed, python_files, where

SHARED = "common"


def _service_folders() -> list[str]:
    return sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").is_file())


def _imported_services(path: Path) -> list[tuple[ast.AST, str]]:
    """(node, service) for every import of a services.<service> module in the file."""
    found: list[tuple[ast.AST, str]] = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from services import selector` names the service in the imported names.
            bare = node.module == "services"
            modules = [f"services.{a.name}" for a in node.names] if bare else [node.module]
        else:
            continue
        found += [(node, m.split(".")[1]) for m in modules if m.startswith("services.")]
    return found


def cross_service_imports(folder: str) -> list[str]:
    own = folder.removeprefix("services/")
    allowed = {own} if own == SHARED else {own, SHARED}
    return [
        f"{where(path, node)} imports services.{service}"
        for path in python_files(folder)
        for node, service in _imported_services(path)
        if service not in allowed
    ]


def test_the_services_are_found() -> None:
    assert {"scheduler", "selector", "embedder", SHARED} <= set(_service_folders())


def test_no_service_imports_another_services_code() -> None:
    found = [line for service in _service_folders() for line in cross_service_imports(f"services/{service}")]
    assert not found, "move what they share to datapool/ (or services/common/):\n" + "\n".join(found)


def test_a_scheduler_import_of_the_selector_would_be_caught(tmp_path: Path) -> None:
    # The check reads source text; point it at a copy holding the import it exists to refuse.
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from services.selector.embedding_cache import EmbeddingCache\nfrom services import embedder\n"
    )
    assert [s for _, s in _imported_services(bad)] == ["selector", "embedder"]


def test_the_user_package_imports_no_service_code() -> None:
    # Dependencies point down: services -> datapool. The client package must install and import
    # without the servers (a `datapool migrate` starts the store's code as a process instead).
    found = [
        f"{where(path, node)} imports services.{service}"
        for path in python_files("datapool")
        for node, service in _imported_services(path)
    ]
    assert not found, "datapool/ must not import services/:\n" + "\n".join(found)


# The scheduler's gRPC edges: what serves calls, what makes them, and the process entry point.
# async_servicer.py is the servicer's asyncio face; async_tags.py a remote client (the selector's GetPool).
SCHEDULER_GRPC_EDGES = {"servicer.py", "async_servicer.py", "remotes.py", "async_tags.py", "__main__.py"}


def _imports_grpc(path: Path) -> bool:
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "grpc" for a in node.names):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "grpc"
        ):
            return True
    return False


def test_grpc_stays_at_the_schedulers_edges() -> None:
    # The run logic sees typed interfaces and domain errors (services/scheduler/run/interfaces.py),
    # so it can be tested with plain fakes; only the edges know the transport.
    found = [
        str(path.relative_to(ROOT))
        for path in python_files("services/scheduler")
        if path.relative_to(ROOT / "services/scheduler").as_posix() not in SCHEDULER_GRPC_EDGES
        and _imports_grpc(path)
    ]
    assert not found, "grpc imported away from the scheduler's servicer/remotes/__main__:\n" + "\n".join(
        found
    )
