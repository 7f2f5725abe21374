"""Power-cut campaign: berthd runs in a QEMU (TCG) Debian 12 VM whose data root is a separate
virtual disk; a stream of loads (archives on the guest's disk; with BERTH_POWERCUT_PULLS=1
pulls from a registry on the machine's loopback through the VM's guestfwd) and commits (of a
container that wrote random bytes) runs over ssh, and the
VM is hard-reset (the monitor's system_reset: everything the guest had not written to its
disks is lost) at a seeded random moment. After the reboot, `berthd --check-store` (offline,
every blob re-hashed) finds nothing that needs a decision, its --repair leaves the store clean,
and every operation reported complete before the cut is intact: the image is there and a
container of it reads back the exact bytes. An operation cut short is either absent or whole.
This is what proves the fsync discipline (file, then directory, then rename), which a SIGKILL
of berthd cannot.

Size and seed: BERTH_POWERCUT_CUTS (default 1, the test suite's size; the campaign: 20 or more),
BERTH_POWERCUT_SEED (default 18). A failure names the seed and the cut."""

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time

import pytest

from tests import imagefactory
from tests.provision.installutil import committed_tree
from tests.registry.registries import Registry
from tests.powercut import VM, ensure_image
from tests.powercut.image import tools_missing

CUTS = int(os.environ.get("BERTH_POWERCUT_CUTS", "1"))
SEED = int(os.environ.get("BERTH_POWERCUT_SEED", "18"))
# the cut lands this many seconds into the stream of operations (TCG: a pull of a few MB or a
# commit takes 3-15 s, so this spans several of them)
CUT_WINDOW = (15.0, 75.0)
REG = "10.0.2.100:5000"  # the registry as the guest sees it (guestfwd to the machine's loopback)
DATA_ROOT = "/var/lib/berth/engine"
# pulls through the guestfwd: off by default (in this QEMU the guest's connections to the
# guestfwd address never reached the registry, so each pull hung until the cut); the same
# images are loaded from archives on the guest's disk instead
PULLS = os.environ.get("BERTH_POWERCUT_PULLS") == "1"
# the guest's kernel has AppArmor on and the image no apparmor_parser: the containers here test
# storage, not the LSM
UNCONFINED = "--security-opt apparmor=unconfined"

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]

GUEST_SETUP = f"""set -e
groupadd -f docker
mkdir -p /var/lib/berth /etc/berth
grep -q berth-data /etc/fstab || echo 'LABEL=berth-data /var/lib/berth ext4 defaults 0 2' >> /etc/fstab
mountpoint -q /var/lib/berth || mount /var/lib/berth
printf '%s\\n' '{{"insecure-registries": ["{REG}"], "data-root": "{DATA_ROOT}"}}' > /etc/berth/daemon.json
cat > /usr/local/bin/berth <<'EOF'
#!/bin/sh
PYTHONPATH=/opt/berth exec python3 -c 'from runtime.cli.main import cli; cli()' "$@"
EOF
cat > /usr/local/bin/berthd <<'EOF'
#!/bin/sh
PYTHONPATH=/opt/berth exec python3 -m runtime.daemon.main --config-file /etc/berth/daemon.json "$@"
EOF
chmod 755 /usr/local/bin/berth /usr/local/bin/berthd
cat > /etc/systemd/system/berthd.service <<'EOF'
[Unit]
Description=berth engine (power-cut campaign; started by the test after its check)
[Service]
ExecStart=/usr/local/bin/berthd
KillMode=process
EOF
systemctl daemon-reload
sync
"""
# under emulation on a loaded machine a python start alone can take seconds: wait up to 15 min
START = ("systemctl start berthd; t=$(($(date +%s) + 900)); while [ $(date +%s) -lt $t ]; do "
         "[ -S /run/berth.sock ] && berth version >/dev/null 2>&1 && exit 0; sleep 1; done; "
         "journalctl -u berthd -n 20 --no-pager; exit 1")


def _blob(rng, size):
    return rng.getrandbits(8 * size).to_bytes(size, "little")


@pytest.fixture(scope="module")
def lab_vm(tmp_path_factory):
    missing = tools_missing()
    if missing:
        pytest.skip(f"no {', '.join(missing)} here: apt-get install qemu-system-x86 qemu-utils")
    if not shutil.which("skopeo") or not os.path.exists("/usr/bin/docker-registry"):
        pytest.skip("skopeo and docker-registry are needed (tests/run.sh installs them)")
    tmp = tmp_path_factory.mktemp("powercut")
    image = ensure_image()
    rng = random.Random(SEED)
    registry = Registry(tmp / "registry").start()
    # one image per pull the campaign may make: busybox and a layer of random bytes
    pulls = []
    for i in range(CUTS * 6 + 4):
        blob = _blob(rng, rng.randrange(1, 4) << 20)
        ref = f"camp/p{i}:1"
        layer = imagefactory.layer_tar([("dir", "data"), ("file", "data/blob", blob)])
        img = imagefactory.Image(ref, [imagefactory.busybox_layer_tar(), layer], gzip=True)
        archive = tmp / "pull.tar"
        imagefactory.docker_archive(str(archive), [img])
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"docker-archive:{archive}",
                        f"docker://{registry.host}/{ref}"], check=True, stdout=subprocess.PIPE)
        pulls.append((f"{REG}/{ref}", hashlib.sha256(blob).hexdigest(), archive.read_bytes()))
    imagefactory.busybox_image_tar(tmp / "busybox.tar")
    vm = VM(tmp / "vm", image, data_disk="2G", forwards={5000: registry.port})
    try:
        boot = vm.start()
        tree = committed_tree(tmp / "committed")
        tar = subprocess.run(["tar", "-C", str(tree), "-c", "runtime"], stdout=subprocess.PIPE,
                             check=True).stdout
        vm.ssh("mkdir -p /opt/berth && tar -C /opt/berth -x", input=tar)
        vm.ssh(GUEST_SETUP)
        vm.ssh("cat > /root/busybox.tar", input=(tmp / "busybox.tar").read_bytes())
        vm.ssh(START, timeout=960)
        vm.ssh("berth load -i /root/busybox.tar && sync")
        for i, (_, _, data) in enumerate(pulls):  # the same images as archives, for `berth load`
            vm.ssh(f"cat > /root/p{i}.tar", input=data)
        vm.ssh("sync")
        yield vm, pulls, boot
    finally:
        vm.remove()
        registry.stop()


class Stream:
    """Operations run one after another in the guest until the VM goes away; each one the
    client saw succeed is recorded (image ref, path inside it, sha256 of that file)."""

    def __init__(self, vm, rng, pulls, counter):
        self.vm, self.rng, self.pulls, self.counter = vm, rng, pulls, counter
        self.done = []  # (op, ref, path, sha)
        self.cut_short = []  # (op, ref, path, sha or None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            i = self.counter[0]
            self.counter[0] += 1
            kind = self.rng.random()
            if kind < 0.5 and i < len(self.pulls) and PULLS:
                ref, sha, _ = self.pulls[i]
                op = ("pull", ref, "/data/blob", sha)
                res = self.vm.ssh(f"berth pull -q {ref}", check=False, timeout=300)
            elif kind < 0.5 and i < len(self.pulls):
                _, sha, _ = self.pulls[i]
                op = ("load", f"camp/p{i}:1", "/data/blob", sha)
                res = self.vm.ssh(f"berth load -q -i /root/p{i}.tar", check=False, timeout=300)
            else:
                size = self.rng.randrange(1, 4) << 20
                name = f"c{i}"
                res = self.vm.ssh(
                    f"berth run --name {name} --network none {UNCONFINED} busybox sh -c "
                    f"'head -c {size} /dev/urandom > /blob && sha256sum /blob'",
                    check=False, timeout=300)
                m = re.match(r"([0-9a-f]{64})", res.stdout)
                op = ("commit", f"camp/c{i}:1", "/blob", m.group(1) if m else None)
                if res.returncode == 0 and m:
                    res = self.vm.ssh(f"berth commit {name} camp/c{i}:1", check=False, timeout=300)
            (self.done if res.returncode == 0 and op[3] else self.cut_short).append(op)
            if res.returncode != 0:
                return  # the cut (or a failure, which the checks below then show)


def offline_check(vm, where):
    """`berthd --check-store`, then --repair, then a clean check; returns the first summary."""
    first = vm.ssh("berthd --check-store", check=False, timeout=900)
    summary = first.stdout.strip().splitlines()[-1] if first.stdout.strip() else first.stderr
    assert " 0 need a decision" in summary, f"{where}: the checker found:\n{first.stdout}{first.stderr}"
    if first.returncode != 0:
        out = vm.ssh("berthd --check-store --repair", check=False, timeout=900)
        assert "0 need a decision" in out.stdout, f"{where}: {out.stdout}{out.stderr}"
        again = vm.ssh("berthd --check-store", check=False, timeout=900)
        assert again.returncode == 0, f"{where}: after --repair: {again.stdout}{again.stderr}"
    return summary


def read_back(vm, ref, path):
    """sha256 of ``path`` in a container of ``ref`` (None when the image is not there)."""
    if vm.ssh(f"berth image inspect {ref} >/dev/null 2>&1", check=False).returncode != 0:
        return None
    out = vm.ssh(f"berth run --rm --network none {UNCONFINED} {ref} sha256sum {path}", check=False,
                 timeout=300)
    assert out.returncode == 0, f"{ref} is listed but does not run: {out.stdout}{out.stderr}"
    return out.stdout.split()[0]


def kinds(ops):
    """{operation: how many} of a list of recorded operations."""
    return {k: sum(1 for o in ops if o[0] == k) for k in ("pull", "load", "commit")}


def test_power_cuts_lose_nothing_reported_complete(lab_vm):
    vm, pulls, boot = lab_vm
    rng = random.Random(SEED)
    counter = [0]
    survived, reboots, summaries, completed, short = 0, [], [], [], []
    for cut in range(CUTS):
        where = f"seed {SEED} cut {cut}"
        stream = Stream(vm, rng, pulls, counter)
        stream.thread.start()
        time.sleep(rng.uniform(*CUT_WINDOW))
        vm.power_cut()
        stream.stop.set()
        stream.thread.join(120)
        assert not stream.thread.is_alive(), f"{where}: the operation stream did not end"
        reboots.append(vm.wait_ssh())
        summaries.append(offline_check(vm, where))
        vm.ssh(START, timeout=960)
        completed += stream.done
        short += stream.cut_short
        for op, ref, path, sha in completed:
            assert read_back(vm, ref, path) == sha, f"{where}: {op} {ref} was reported complete: lost"
        for op, ref, path, sha in stream.cut_short:
            got = read_back(vm, ref, path)
            assert got is None or sha is None or got == sha, f"{where}: {op} {ref} cut short is half there"
        report = json.loads(vm.ssh("berth system check -f json").stdout)
        assert report["Problems"] == 0, f"{where}: {report}"
        survived += 1
    print(f"power cuts survived: {survived} (seed {SEED}); operations complete before a cut: "
          f"{len(completed)} {kinds(completed)}, cut short: "
          f"{[(o[0], o[1]) for o in short]}; first boot {boot:.0f} s, reboots "
          f"{[round(r) for r in reboots]} s; offline checks: {summaries}")

