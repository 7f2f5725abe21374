"""The guest the tests of this package share: one boot (package scope) for the power-cut
campaign and the cgroup v2 test, each a few minutes of emulated boot saved on the suite's VM
stream. Its data root is a separate virtual disk; berthd (the committed tree's runtime/) runs
as a systemd unit; busybox is loaded. A test may start, stop and power-cut it, and leaves
berthd running at its end (START)."""

import hashlib
import os
import random
import shutil
import subprocess

import pytest

from tests import imagefactory
from tests.provision.installutil import committed_tree
from tests.registry.registries import Registry
from tests.powercut import VM, ensure_image
from tests.powercut.image import tools_missing

CUTS = int(os.environ.get("BERTH_POWERCUT_CUTS", "1"))
SEED = int(os.environ.get("BERTH_POWERCUT_SEED", "18"))
REG = "10.0.2.100:5000"  # the registry as the guest sees it (guestfwd to the machine's loopback)
DATA_ROOT = "/var/lib/berth/engine"
# pulls through the guestfwd: off by default (in this QEMU the guest's connections to the
# guestfwd address never reached the registry, so each pull hung until the cut); the same
# images are loaded from archives on the guest's disk instead
PULLS = os.environ.get("BERTH_POWERCUT_PULLS") == "1"
# the containers here test storage and cgroups, not the LSM (the Vagrant test proves AppArmor)
UNCONFINED = "--security-opt apparmor=unconfined"

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


@pytest.fixture(scope="package")
def lab_vm(tmp_path_factory):
    """(the VM, the campaign's images as (ref, sha256 of its blob, archive bytes), seconds its
    first boot took): berthd of the committed tree running, busybox loaded, the images' archives
    on the guest's disk, a registry of them on the machine's loopback."""
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
