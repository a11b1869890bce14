#!/usr/bin/env bash
# Makes the Python virtualenv with the official Graph SDK (tests/graph/requirements.txt,
# every package pinned) that server/tests/suite/graph_sdk.rs drives, unless it exists with those
# pins, and prints its python. .ci/run exports it as TENANTLESS_GRAPH_PYTHON:
#   export TENANTLESS_GRAPH_PYTHON=$(scripts/graph-sdk-env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/pinned-venv.sh tests/graph/requirements.txt "${TENANTLESS_GRAPH_VENV:-$PWD/target/graph-venv}"
