#!/usr/bin/env bash
# Makes the Python virtualenv with schemathesis (tests/openapi/requirements.txt, every
# package pinned) that server/tests/suite/openapi.rs runs against the served OpenAPI document,
# and prints the path of its `schemathesis`. .ci/run exports it as TENANTLESS_SCHEMATHESIS:
#   export TENANTLESS_SCHEMATHESIS=$(scripts/schemathesis-env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/pinned-venv.sh tests/openapi/requirements.txt "${TENANTLESS_SCHEMATHESIS_VENV:-$PWD/target/schemathesis-venv}")
echo "$(dirname "$python")/schemathesis"
