#!/usr/bin/env bash
# The whole check: lints, generated-code drift, Rust tests, Python tests
# (unit, service and end-to-end through real `datapool up` processes).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== protos: committed stubs match protos/"
.venv/bin/python scripts/gen_protos.py --check
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy datapool services scripts tests/*.py
# Each test folder is its own import root (pytest puts it on sys.path, so its
# support modules import by plain name); mypy checks them the same way.
for d in tests/*/; do
    .venv/bin/mypy "$d"
done
echo "== stubtest: selector_rs/selector_rs.pyi against the built extension"
# The committed stub, not the copy pip installed, is what is checked: stubtest finds stubs on
# MYPYPATH before site-packages.
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
mkdir "$stubs/selector_rs"
cp selector_rs/selector_rs.pyi "$stubs/selector_rs/__init__.pyi"
MYPYPATH="$stubs" .venv/bin/python -m mypy.stubtest --allowlist scripts/stubtest-allowlist.txt selector_rs
echo "== deploy: hadolint, helm lint + template, Kubernetes schemas"
./deploy/check.sh
echo "== rustfmt, clippy, cargo test"
(cd selector_rs && cargo fmt --all --check \
    && cargo clippy --workspace --all-targets --locked -- -D warnings \
    && cargo test --workspace --locked)
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
