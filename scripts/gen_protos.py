"""Regenerate the committed Python stubs in datapool/v1 from protos/.

The stubs are committed (as temporalio/sdk-python does) so that installing
datapool needs no protoc; CI runs this with --check and fails on any drift.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT_PACKAGE = Path("datapool") / "v1"


def generate(out_root: Path) -> Path:
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "datapool" / "v1").glob("*.proto"))
    plugin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out = out_root / OUT_PACKAGE
    (out / "__init__.py").write_text(
        '"""Generated protobuf and gRPC stubs; do not edit (scripts/gen_protos.py)."""\n'
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ")
    args = parser.parse_args()
    target = ROOT / OUT_PACKAGE
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        names = sorted(p.name for p in fresh.iterdir() if p.is_file())
        if args.check:
            committed = sorted(p.name for p in target.iterdir() if p.is_file()) if target.exists() else []
            _, mismatch, errors = filecmp.cmpfiles(fresh, target, names, shallow=False)
            if names != committed or mismatch or errors:
                print(f"generated stubs drifted from protos/: {mismatch + errors or 'file set differs'}")
                print("run: .venv/bin/python scripts/gen_protos.py")
                return 1
            print("generated stubs match protos/")
            return 0
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if old.is_file():
                old.unlink()
        for name in names:
            shutil.copy2(fresh / name, target / name)
    print(f"wrote {len(names)} files to {OUT_PACKAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
