"""The project's Vagrantfile brought up for real: Vagrant + vagrant-libvirt drive a libvirtd of
our own (in a network namespace, tests/lab/libvirtns.py), which boots a Debian 12 box with its
own kernel under QEMU's software emulation (tests/lab/vmbox.py). The Vagrantfile's trigger runs
the real `provision host` against the VM; the guest then proves what only a real machine can:
kernel modules loaded at boot by systemd-modules-load from the file provision wrote, sysctls
applied at boot, berthd enabled and started at boot, a `--restart always` container running
again after a real reboot; and, the guest's kernel running AppArmor with the apparmor package
installed, containers confined by berthd's profile (issue 17's AppArmor in a real kernel).

One VM, ~5-8 minutes (TCG boots are slow; more under load). BERTH_MACHINES=2 by hand: see
docs/provision.md.
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.lab.libvirtns import LibvirtNamespace
from tests.lab.vmbox import ensure_box
from tests.provision.labutil import ROOT, build_apt_repo

pytestmark = [
    pytest.mark.vm,
    pytest.mark.slow,
    pytest.mark.timeout(5400),
    pytest.mark.skipif(
        not (shutil.which("vagrant") and shutil.which("libvirtd") and shutil.which("qemu-system-x86_64")),
        reason="vagrant, libvirtd or qemu-system-x86_64 missing (tests/run.sh installs them)",
    ),
]

BOX = "berth-test/bookworm"
# Vagrant's user-level Vagrantfile (VAGRANT_HOME/Vagrantfile, merged under the project's): a
# software-emulated boot on a loaded 2-core machine takes minutes, not Vagrant's default 300 s
USER_VAGRANTFILE = """\
Vagrant.configure("2") do |config|
  config.vm.boot_timeout = 1500
end
"""
#: vagrant-libvirt's management network is 192.168.121.0/24; the namespace's end of it is .1
MANAGEMENT_HOST = "192.168.121.1"
# One guest round trip for everything a reboot must have restored (as the vagrant user).
BOOT_STATE = r"""
prop() { systemctl show -p "$1" --value "$2"; }
row() { tr '\n' ,; }
nf=/proc/sys/net/bridge/bridge-nf-call
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "modules=$(lsmod | awk '$1 == "br_netfilter" || $1 == "overlay" {print $1}' | sort | row)"
echo "modules_load=$(prop ActiveState systemd-modules-load) $(prop Result systemd-modules-load)"
echo "modules_file=$(grep -v '^#' /etc/modules-load.d/berth.conf | row)"
echo "sysctl_file=$(grep -c = /etc/sysctl.d/99-berth.conf)"
echo "sysctls=$(cat $nf-iptables $nf-ip6tables /proc/sys/net/ipv4/ip_forward | row)"
echo "sysctl_unit=$(prop Result systemd-sysctl) $(prop ExecMainExitTimestampMonotonic systemd-sysctl)"
echo "berthd=$(systemctl is-enabled berthd) $(systemctl is-active berthd)" \
  "$(prop ActiveEnterTimestampMonotonic berthd)"
echo "keeper=$(berth inspect -f '{{.State.Running}} {{.RestartCount}}' keeper)"
"""


# AppArmor as on a stock Debian host (the kernel runs it, the apparmor package is installed): the
# profile berthd loaded confines PID 1 and an exec; unconfined and --privileged when asked.
APPARMOR_STATE = r"""
p=berth-probe
echo "pid1=$(berth run --rm $p cat /proc/1/attr/current)"
berth run -d --name aa $p sleep 1000 >/dev/null
echo "exec=$(berth exec aa cat /proc/self/attr/current)"
berth rm -f aa >/dev/null
echo "unconfined=$(berth run --rm --security-opt apparmor=unconfined $p cat /proc/1/attr/current)"
echo "privileged=$(berth run --rm --privileged $p cat /proc/1/attr/current)"
echo "loaded=$(sudo grep -c '^berth-default ' /sys/kernel/security/apparmor/profiles)"
echo "info=$(berth info -f json | tr -d '\n')"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vagrant:
    """`vagrant` on the project's Vagrantfile, run inside the libvirt namespace."""

    def __init__(self, ns: LibvirtNamespace, tmp: pathlib.Path, mirror: str, machines: int = 1):
        self.ns = ns
        self.report = tmp / "report.json"
        self.times = []  # (command, seconds): printed at the end (pytest -s shows them)
        provision = pathlib.Path(sys.executable).with_name("provision")
        self.env = dict(
            os.environ,
            VAGRANT_HOME=str(tmp / "vagrant.d"),
            VAGRANT_CWD=str(ROOT),
            VAGRANT_DOTFILE_PATH=str(tmp / "dot"),
            VAGRANT_CHECKPOINT_DISABLE="1",
            VAGRANT_DEFAULT_PROVIDER="libvirt",
            LIBVIRT_DEFAULT_URI=ns.uri,  # this test's libvirtd (vagrant-libvirt reads it)
            BERTH_BOX=BOX,
            BERTH_MACHINES=str(machines),
            BERTH_PROVISION=str(provision) if provision.exists() else "provision",
            BERTH_MIRROR=mirror,
            BERTH_PROVISION_OPTS=f"--no-gpgcheck --report {self.report}",
        )

    def __call__(self, *args, timeout=2700) -> str:
        self.report.unlink(missing_ok=True)
        t0 = time.monotonic()
        p = self.ns.exec(["vagrant", *args], env=self.env, timeout=timeout, check=False)
        self.times.append((" ".join(args[:2]), time.monotonic() - t0))
        what = f"vagrant {' '.join(args)} exited {p.returncode}"
        assert p.returncode == 0, f"{what}:\n{p.stdout[-4000:]}\n{p.stderr[-3000:]}"
        return p.stdout

    def ssh(self, command: str, machine: str = "default") -> str:
        return self("ssh", machine, "-c", command, timeout=300)

    def provisioned(self) -> list:
        """The hosts of the JSON report the last command's `provision host` wrote."""
        assert self.report.exists(), "the Vagrantfile's trigger did not run provision host"
        return json.loads(self.report.read_text())["hosts"]


def guest_state(vagrant: Vagrant) -> dict:
    out = vagrant.ssh(BOOT_STATE)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture
def vagrant(tmp_path):
    box = ensure_box()
    with LibvirtNamespace() as ns:
        port = free_port()
        repo = build_apt_repo(tmp_path / "mirror")
        server = ns.popen([sys.executable, "-m", "http.server", str(port), "--bind", "0.0.0.0",
                           "--directory", str(repo)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        v = Vagrant(ns, tmp_path, f"http://{MANAGEMENT_HOST}:{port}")
        (tmp_path / "vagrant.d").mkdir()
        (tmp_path / "vagrant.d" / "Vagrantfile").write_text(USER_VAGRANTFILE)
        try:
            v("box", "add", "--name", BOX, str(box))
            yield v
        finally:
            ns.exec(["vagrant", "destroy", "-f"], env=v.env, timeout=600, check=False)
            server.terminate()
            server.wait(10)


def test_vagrant_up_ssh_reboot_provision_destroy(vagrant):
    ns = vagrant.ns
    # up: boots the box, the trigger provisions it in one `provision host` call
    vagrant("up", "--provider=libvirt")
    [host] = vagrant.provisioned()
    assert host["changed"] > 0 and host["failed"] == 0, host
    assert host["verify"]["status"] == "ok", host["verify"]
    assert vagrant.ssh("berth run --rm berth-probe echo ok").strip().splitlines()[-1] == "ok"
    aa = dict(line.split("=", 1) for line in vagrant.ssh(APPARMOR_STATE).splitlines() if "=" in line)
    assert aa["loaded"] == "1", aa
    assert (aa["pid1"], aa["exec"]) == ("berth-default (enforce)",) * 2, aa
    assert (aa["unconfined"], aa["privileged"]) == ("unconfined", "unconfined"), aa
    assert "name=apparmor" in json.loads(aa["info"])["SecurityOptions"], aa["info"][:2000]
    vagrant.ssh("berth run -d --restart always --name keeper berth-probe sleep 1000000")
    before = guest_state(vagrant)
    assert before["keeper"].startswith("true"), before

    # reload: a real reboot (a new boot id); what provision set up comes back by itself, so the
    # provision run after it has nothing to change
    vagrant("reload")
    [host] = vagrant.provisioned()
    assert host["changed"] == 0 and host["failed"] == 0, host
    after = guest_state(vagrant)
    assert after["boot_id"] != before["boot_id"]
    assert after["modules_file"] == "overlay,br_netfilter,", after
    assert after["modules"] == "br_netfilter,overlay,", after
    # loaded in this boot with systemd-modules-load done (and the provision run after the reboot
    # changed nothing, so it did not load them)
    assert after["modules_load"] == "active success", after
    assert after["sysctls"] == "1,1,1,", after
    assert int(after["sysctl_file"]) >= 3
    result, sysctl_done = after["sysctl_unit"].split()
    enabled, active, berthd_started = after["berthd"].split()
    assert result == "success" and (enabled, active) == ("enabled", "active"), after
    assert 0 < int(sysctl_done) < int(berthd_started), "the sysctls were applied before berthd started"
    assert after["keeper"].startswith("true"), after

    # provision: a rerun reports 0 changed
    vagrant("provision")
    [host] = vagrant.provisioned()
    assert (host["changed"], host["failed"]) == (0, 0), host

    # destroy: no domain, no machine volume, no network left in libvirt
    vagrant("destroy", "-f")
    assert ns.domains() == []
    assert "vagrant-libvirt" not in ns.networks()
    # vagrant-libvirt keeps the box's base image in the pool for the next `up`: only that stays
    assert [v for v in ns.volumes() if "_vagrant_box_image_" not in v] == []
    print("vagrant seconds: " + ", ".join(f"{c} {t:.0f}" for c, t in vagrant.times))
