#!/usr/bin/env bash
# Generate the Python protobuf/gRPC code and its type stubs from proto/ into OUT
# (default: the client package). Usage: scripts/generate.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-clients/python}
PY=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PY")
mkdir -p "$OUT/storagegw/v1"
rm -f "$OUT"/storagegw/v1/*_pb2*.py "$OUT"/storagegw/v1/*_pb2*.pyi
# protoc-gen-mypy / protoc-gen-mypy_grpc come from mypy-protobuf in the venv.
PATH="$BIN:$PATH" "$PY" -m grpc_tools.protoc -I proto \
  --python_out="$OUT" --grpc_python_out="$OUT" \
  --mypy_out="$OUT" --mypy_grpc_out="$OUT" \
  proto/storagegw/v1/*.proto
