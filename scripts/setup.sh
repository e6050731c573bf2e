#!/usr/bin/env bash
# Creates .venv at the repository root with datapool, its dev tools and the
# selector_rs extension. Idempotent: re-running reinstalls only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi

PIP=(.venv/bin/python -m pip install --quiet)
# A local wheel (e.g. torch) is preferred where the machine has one.
if [ -d /opt/wheels ] && compgen -G "/opt/wheels/*.whl" > /dev/null; then
    PIP+=(--find-links /opt/wheels)
fi

stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

py_stamp=$(stamp_of pyproject.toml)
if [ "$(cat .venv/.datapool-py 2>/dev/null)" != "$py_stamp" ]; then
    echo "setup: installing datapool and its dependencies into .venv (torch is large; first time takes minutes)"
    "${PIP[@]}" -e '.[dev]'
    echo "$py_stamp" > .venv/.datapool-py
fi

rs_stamp=$(stamp_of selector_rs/Cargo.toml selector_rs/Cargo.lock selector_rs/pyproject.toml \
    $(find selector_rs/src selector_rs/core/src selector_rs/python -type f 2>/dev/null | sort))
if [ "$(cat .venv/.datapool-rs 2>/dev/null)" != "$rs_stamp" ]; then
    echo "setup: building selector_rs (Rust, release) into .venv"
    "${PIP[@]}" ./selector_rs
    echo "$rs_stamp" > .venv/.datapool-rs
fi
# Azurite (the Azure Blob emulator the storage tests start) is an npm package pinned by the
# committed lockfile; reinstalled only when the lockfile or package.json changes.
az_stamp=$(stamp_of tests/emulators/package.json tests/emulators/package-lock.json)
if [ "$(cat tests/emulators/node_modules/.datapool-stamp 2>/dev/null)" != "$az_stamp" ]; then
    if command -v npm > /dev/null; then
        echo "setup: installing Azurite into tests/emulators/node_modules"
        npm ci --prefix tests/emulators --no-audit --no-fund --loglevel=error
        echo "$az_stamp" > tests/emulators/node_modules/.datapool-stamp
    else
        echo "setup: npm not found; Azure storage tests will fail until Node.js 18+ and npm are installed" >&2
    fi
fi
# `datapool view`'s browser code: regl-scatterplot bundled by esbuild (both pinned by the committed
# lockfile) into datapool/view/static/dist (ignored by git), so the page needs no CDN at run time.
view_stamp=$(stamp_of datapool/view/web/package.json datapool/view/web/package-lock.json datapool/view/web/view.js)
if [ "$(cat datapool/view/static/dist/.datapool-stamp 2>/dev/null)" != "$view_stamp" ]; then
    if command -v npm > /dev/null; then
        echo "setup: bundling the embedding view (npm ci + esbuild) into datapool/view/static/dist"
        npm ci --prefix datapool/view/web --no-audit --no-fund --loglevel=error
        npm run --prefix datapool/view/web --silent build
        echo "$view_stamp" > datapool/view/static/dist/.datapool-stamp
    else
        echo "setup: npm not found; datapool view serves no page until Node.js 18+ and npm are installed" >&2
    fi
fi
# Debian's chromium for the browser tests of the view and report.html (tests/view, Playwright with
# executable_path=/usr/bin/chromium: Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ] && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's chromium (apt-get) for tests/view"
    # A fresh machine may have no package lists yet: update them once and try again.
    apt-get install -y -qq --no-install-recommends chromium > /dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium > /dev/null; } \
        || echo "setup: could not install chromium; tests/view will be skipped" >&2
fi
# helm, for the chart checks of deploy/ (deploy/check.sh, tests/deploy/): built from the Go module
# proxy into .tools/bin (ignored by git), pinned; rebuilt only when the pinned version changes.
HELM_VERSION=v3.22.0
if [ "$(cat .tools/bin/.helm-version 2>/dev/null)" != "$HELM_VERSION" ] || [ ! -x .tools/bin/helm ]; then
    if command -v go > /dev/null; then
        echo "setup: building helm $HELM_VERSION into .tools/bin (Go module proxy; first time takes minutes)"
        mkdir -p .tools/bin
        GOBIN="$PWD/.tools/bin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
        echo "$HELM_VERSION" > .tools/bin/.helm-version
    else
        echo "setup: go not found; the chart checks need helm: install Go 1.21+ and re-run" >&2
    fi
fi
# lightly==1.5.26 in its own venv, for tests/gateway/ (Lightly's client against the REST gateway):
# never installed into .venv, so its pins cannot conflict with ours; reused when present.
LIGHTLY_VERSION=1.5.26
if [ "$(cat .lightly-venv/.lightly-version 2>/dev/null)" != "$LIGHTLY_VERSION" ]; then
    echo "setup: installing lightly==$LIGHTLY_VERSION into .lightly-venv (for tests/gateway)"
    "$PYTHON" -m venv .lightly-venv
    LIGHTLY_PIP=(.lightly-venv/bin/python -m pip install --quiet)
    if [ -d /opt/wheels ] && compgen -G "/opt/wheels/*.whl" > /dev/null; then
        LIGHTLY_PIP+=(--find-links /opt/wheels)
    fi
    "${LIGHTLY_PIP[@]}" "lightly==$LIGHTLY_VERSION"
    echo "$LIGHTLY_VERSION" > .lightly-venv/.lightly-version
fi
# Postgres, for the scheduler's store tests (tests/postgres_server.py starts a throwaway cluster
# with initdb on a loopback port and stops it): Debian's package, installed only when missing.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null && ! command -v initdb > /dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "setup: installing postgresql (Debian package) for the scheduler store tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq --no-install-recommends postgresql > /dev/null \
            || { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql > /dev/null; }
    else
        echo "setup: Postgres not found; the scheduler store tests need it: apt-get install -y postgresql" >&2
    fi
fi
echo "setup: .venv ready"
