"""`docker stats --no-stream` and `docker top` on a real cgroup v2 host: berthd of the committed
tree in the package's Debian 12 guest (QEMU, software emulation: its own 6.1 kernel mounts the
unified hierarchy with the memory controller, which this hybrid-v1 machine cannot give),
driven by the docker CLI here through an ssh-forwarded socket. The guest is the one the
power-cut campaign boots (conftest.py): one boot for both."""

import json
import re
import subprocess

import pytest

from tests.api.conftest import DOCKER
from tests.powercut.conftest import UNCONFINED

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(1800)]
SOCK = "/run/berth.sock"


@pytest.fixture
def guest(lab_vm, tmp_path):
    """(the VM, the docker CLI's -H for the berthd in it)."""
    vm = lab_vm[0]
    local = str(tmp_path / "berth.sock")
    forward = vm.forward_socket(local, SOCK)
    try:
        yield vm, "unix://" + local
    finally:
        forward.terminate()
        forward.wait(10)


def _docker(host, *args, timeout=300):
    p = subprocess.run([DOCKER, "-H", host] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    assert p.returncode == 0, (args, p.stderr.decode())
    return p.stdout.decode()


def _bytes(text):
    """docker's human size ("1.2MiB", "404KiB", "0B") in bytes."""
    m = re.match(r"^([\d.]+)\s*([KMGT]?i?B)$", text.strip())
    assert m, text
    scale = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m.group(2)]
    return float(m.group(1)) * scale


def test_stats_and_top_on_cgroup_v2(guest):
    machine, host = guest
    fs = machine.ssh("stat -f -c %T /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.controllers").stdout
    assert fs.split()[0] == "cgroup2fs" and "memory" in fs.split(), fs
    info = json.loads(_docker(host, "info", "--format", "{{json .}}"))
    assert info["CgroupVersion"] == "2", info.get("CgroupVersion")
    # a shell holding 16 MiB of string (doubled 20 times), waiting on its sleep (the command
    # after it keeps busybox's sh from exec'ing the sleep and dropping the string)
    # (AppArmor is not what this test is about: see conftest.UNCONFINED)
    cid = _docker(host, "run", "-d", "--name", "hold", "--memory", "256m", "--network", "none",
                  *UNCONFINED.split(), "busybox", "sh", "-c",
                  "x=0123456789abcdef; i=0; while [ $i -lt 20 ]; do x=$x$x; i=$((i+1)); done; "
                  "echo ready; sleep 600; echo done").strip()
    try:
        for _ in range(120):
            if "ready" in _docker(host, "logs", cid):
                break
            machine.ssh("sleep 1")
        raw = json.loads(_docker(host, "stats", "--no-stream", "--format", "{{json .}}", "hold"))
        usage, limit = raw["MemUsage"].split("/")
        assert 16 << 20 <= _bytes(usage) < 200 << 20, raw  # the string is in it: megabytes, not 0
        assert _bytes(limit) == 256 << 20, raw  # --memory, written to memory.max
        # (CPU % is not checked: under emulation the guest's /proc/stat ticks fall behind the
        # cgroup's clock when the host is loaded, for dockerd's arithmetic as for ours)
        assert raw["PIDs"] == "2" and raw["CPUPerc"].endswith("%"), raw
        cg = machine.ssh("cat /proc/$(pgrep -x sleep | head -1)/cgroup").stdout.strip()
        path = "/sys/fs/cgroup" + cg.split("::", 1)[1]
        current = int(machine.ssh("cat %s/memory.current" % path).stdout)
        assert abs(current - _bytes(usage)) < 4 << 20, (current, usage)  # that cgroup's figure
        assert machine.ssh("cat %s/memory.max" % path).stdout.strip() == str(256 << 20)
        top = _docker(host, "top", "hold")
        assert "sleep 600" in top and "x=0123456789abcdef" in top, top
    finally:
        _docker(host, "rm", "-f", cid)
