#!/usr/bin/env bash
# Installs berth (the `provision`, `berth` and `berthd` commands) into ./.venv.
set -euo pipefail
cd "$(dirname "$0")"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    if command -v apt-get >/dev/null; then apt-get update -q && apt-get install -y -q python3-venv python3-pip;
    elif command -v dnf >/dev/null; then dnf install -y python3 python3-pip;
    elif command -v yum >/dev/null; then yum install -y python3 python3-pip; fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check .
echo "installed: $(pwd)/.venv/bin/provision, berth, berthd"
