#!/usr/bin/env bash
# Makes a Python virtualenv holding exactly the pinned packages of a requirements file
# (installed --no-deps: the file lists every package), unless one with those pins is
# there already, and prints its python. Used by graph-sdk-env.sh and schemathesis-env.sh:
#   scripts/pinned-venv.sh REQUIREMENTS VENV_DIR
set -euo pipefail
pins=$1
venv=$2
stamp=$venv/.requirements
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$pins" "$stamp"; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$pins" >&2
    cp "$pins" "$stamp"
fi
echo "$venv/bin/python"
