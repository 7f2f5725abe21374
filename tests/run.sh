#!/usr/bin/env bash
# The test command from README.md: installs every test dependency (apt and pip), then runs
# ruff, vermin (runtime/ must run on Python 3.6), the import contracts (import-linter) and the
# whole pytest suite, as root.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k lab -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: the tests boot hosts and mount filesystems; run it as root (sudo bash tests/run.sh)" >&2
    exit 2
fi

APT_PACKAGES=(
    python3 python3-venv python3-pip
    systemd-container debootstrap debian-archive-keyring iptables iproute2 kmod e2fsprogs xfsprogs psmisc
    openssh-client busybox-static
    skopeo umoci docker-registry crun runc podman hyperfine
    dnf rpm createrepo-c apache2-utils openssl
    ruby dpkg-dev gcc libc6-dev
    vagrant vagrant-libvirt libvirt-daemon-system dnsmasq-base qemu-system-x86 qemu-utils
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "tests/run.sh: installing ${missing[*]}"
    apt-get update -q
    # no package starts its service (libvirtd, ...): the tests start their own, in namespaces
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
    [ -z "$made_policy" ] || rm -f "$policy"
    [ "$rc" = 0 ] || exit "$rc"
fi

VENV=${BERTH_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
export PATH="$PWD/$VENV/bin:$PATH"

ruff check .
vermin --target=3.6- --no-tips --violations -q runtime/
lint-imports --no-cache  # the import contracts in .importlinter
ansible-lint -q playbooks  # the playbooks and the berth role
exec pytest "$@"
