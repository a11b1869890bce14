#!/usr/bin/env bash
# Makes the Python virtualenv with the official Graph SDK (tests/graph/requirements.txt,
# every package pinned) that server/tests/graph_sdk.rs drives, unless it exists with those
# pins, and prints its python. .ci/run exports it as TENANTLESS_GRAPH_PYTHON:
#   export TENANTLESS_GRAPH_PYTHON=$(scripts/graph-sdk-env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${TENANTLESS_GRAPH_VENV:-$PWD/target/graph-venv}
pins=tests/graph/requirements.txt
stamp=$venv/.requirements
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$pins" "$stamp"; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$pins" >&2
    cp "$pins" "$stamp"
fi
echo "$venv/bin/python"
