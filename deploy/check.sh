#!/usr/bin/env bash
# Offline checks of deploy/ (scripts/test.sh runs this): the Dockerfile against hadolint, the chart
# with `helm lint` and `helm template` for each values file in ci/, every rendered manifest against
# the Kubernetes OpenAPI schemas (kubernetes-validate bundles them; strict: unknown fields fail)
# for the oldest Kubernetes the chart supports and the newest the validator knows. The chart tests
# (tests/deploy/) run with the rest of pytest. No cluster, no Docker engine, no network.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM="${HELM:-.tools/bin/helm}"
CHART=deploy/helm/datapool
KUBE_VERSIONS=(1.27.0 1.37.0)
# Stated, not taken from helm: a `go install`ed helm has no Kubernetes version built in (v1.20).
RENDER_AS=(--kube-version "${KUBE_VERSIONS[-1]}")

.venv/bin/hadolint deploy/Dockerfile
echo "deploy: hadolint deploy/Dockerfile ok"

if [ ! -x "$HELM" ]; then
    if [ -n "${CI:-}" ]; then
        echo "deploy: $HELM missing; scripts/setup.sh builds it (needs Go)" >&2
        exit 1
    fi
    echo "deploy: skipping the chart checks: $HELM missing (scripts/setup.sh builds it when Go is installed)"
    exit 0
fi

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
for values in "$CHART"/ci/*-values.yaml; do
    name="$(basename "$values" .yaml)"
    "$HELM" lint --strict "${RENDER_AS[@]}" "$CHART" -f "$values" > "$rendered/$name.lint" \
        || { cat "$rendered/$name.lint" >&2; exit 1; }
    "$HELM" template datapool "$CHART" "${RENDER_AS[@]}" --namespace datapool -f "$values" > "$rendered/$name.yaml"
    for k in "${KUBE_VERSIONS[@]}"; do
        .venv/bin/kubernetes-validate --strict --quiet -k "$k" "$rendered/$name.yaml"
    done
    echo "deploy: $values: helm lint, helm template, schemas (Kubernetes ${KUBE_VERSIONS[*]}) ok"
done

