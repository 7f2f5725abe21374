#!/usr/bin/env bash
# The test command from README.md: installs every test dependency (apt and pip), then runs
# ruff, vermin (runtime/ must run on Python 3.6), the import contracts (import-linter) and the
# whole pytest suite, as root.
# Extra arguments go to one pytest, e.g. `bash tests/run.sh -k lab -x`. Without any, the tests
# that boot a VM (marker `vm`: QEMU's software emulation, one busy thread each) run in a second
# pytest beside the rest, which runs on two pytest-xdist workers: it waits on hosts, ssh and
# disks most of its time (about 40 % of two cores busy when it ran alone in one process).
# The VM tests start before the lints (theirs is the longest stream); each stream prints its
# slowest tests (--durations): where the suite's 20 minutes go.
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
    vagrant vagrant-libvirt libvirt-daemon-system dnsmasq-base qemu-system-x86 qemu-utils secilc
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

lint() {  # stops at the first failure (errexit does not hold inside a || list)
    ruff check . &&
        vermin --target=3.6- --no-tips --violations -q runtime/ &&
        lint-imports --no-cache &&  # the import contracts in .importlinter
        ansible-lint -q playbooks  # the playbooks and the berth role
}
if [ "$#" -gt 0 ]; then
    lint
    exec pytest "$@"
fi
# The VM tests start first, and the Vagrant box is built beside the power-cut guest's image
# (both copy one debootstrap tree, which takes minutes on a new machine): the VM stream is the
# suite's longest. The lints run meanwhile; a lint failure stops both.
vmlog=$(mktemp /tmp/berth-vm-tests.XXXXXX)
boxlog=$(mktemp /tmp/berth-vm-box.XXXXXX)
pytest -m vm -p no:cacheprovider --durations=0 >"$vmlog" 2>&1 &
vmpid=$!
python -m tests.lab.vmbox >"$boxlog" 2>&1 &  # the Vagrant test builds it itself if this failed
boxpid=$!
stop_background() {
    kill -TERM "$vmpid" "$boxpid" 2>/dev/null
    wait "$vmpid" "$boxpid" 2>/dev/null
    rm -f "$vmlog" "$boxlog"
}
trap 'stop_background; exit 130' INT TERM
lintrc=0
lint || lintrc=$?
if [ "$lintrc" != 0 ]; then
    stop_background
    exit "$lintrc"
fi
rc=0
# pytest-xdist: two workers, tests handed out in small batches (`--dist loadfile`, each module
# whole on one worker, ended the run 3 min later: so every test sets up what it needs)
pytest -m "not vm" -n 2 --durations=15 || rc=$?
vmrc=0
wait "$vmpid" || vmrc=$?
boxrc=0
wait "$boxpid" || boxrc=$?
trap - INT TERM
echo "=== the VM tests (pytest -m vm), run beside the rest ==="
cat "$vmlog"
if [ "$boxrc" != 0 ]; then
    echo "=== building the Vagrant box ahead failed ($boxrc) ==="
    tail -20 "$boxlog"
fi
rm -f "$vmlog" "$boxlog"
[ "$rc" = 0 ] || exit "$rc"
exit "$vmrc"
