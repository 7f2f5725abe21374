#!/usr/bin/env bash
# Installs berth (the `provision`, `berth` and `berthd` commands) into ./.venv.
# Run it as root or as a user with sudo (sudo is used only to install python3-venv when it is
# missing); PYTHON=/path/to/python3.X picks the interpreter (default: the newest python3 >= 3.9).
set -euo pipefail
cd "$(dirname "$0")"

die() { echo "install.sh: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "needs root to run '$*': run install.sh as root, or install sudo"; fi
}

version_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; }

pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON is not an executable"
        version_ok "$PYTHON" || die "PYTHON=$PYTHON is $("$PYTHON" -V 2>&1); provision needs Python >= 3.9"
        echo "$PYTHON"; return
    fi
    for p in python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
        if command -v "$p" >/dev/null && version_ok "$p"; then echo "$p"; return; fi
    done
    local found="no python3 on PATH"
    command -v python3 >/dev/null && found="python3 is $(python3 -V 2>&1) ($(command -v python3))"
    die "provision needs Python >= 3.9 and $found. Install one (Debian/Ubuntu: apt-get install python3 python3-venv; EL8/9: dnf install python3.11), or set PYTHON=/path/to/python3.X. CentOS 7 has no Python 3.9: run provision from another machine over SSH (provision host root@THIS-HOST); the engine itself runs on CentOS 7's python3 3.6."
}

PY=$(pick_python)
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    v=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if command -v apt-get >/dev/null; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$v-venv" python3-pip \
            || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv python3-pip
    elif command -v dnf >/dev/null; then as_root dnf install -y python3-pip
    elif command -v yum >/dev/null; then as_root yum install -y python3-pip
    else die "$PY has no venv/ensurepip module: install your distribution's python3 venv package"; fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check .
echo "installed: $(pwd)/.venv/bin/provision, berth, berthd (Python $(.venv/bin/python -V 2>&1 | cut -d' ' -f2))"
