"""The lab itself: hosts are real, isolated from the machine and each other, fenced in on their
bridge, and `down` leaves nothing behind. Also the nested and el7 flavours."""

import concurrent.futures
import json
import os
import pathlib
import shlex
import socket
import subprocess
import sys

import pytest

from tests.lab import cgroups, net, rootfs, rpmrepo
from tests.lab.paths import lab_run_dir, lab_var_dir

pytestmark = pytest.mark.lab
ROOT = pathlib.Path(__file__).resolve().parent.parent

UNIT = """[Unit]
Description=berth lab probe
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
"""


def machine_address() -> str:
    """The machine's primary address outside any lab bridge."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    addrs = [w.split("/")[0] for w in out.split() if w[0].isdigit() and "/" in w]
    addrs = [a for a in addrs if not a.startswith("10.247.")]
    assert addrs, out
    return addrs[0]


def connect_script(ip: str, port: int) -> str:
    """Python run inside a host: one bounded TCP connect; prints ok or the error."""
    return ("python3 -c " + shlex.quote(
        "import socket\ntry:\n socket.create_connection(('%s', %d), timeout=2).close(); print('ok')\n"
        "except OSError as e:\n print('fail', e)" % (ip, port)))


@pytest.fixture(scope="module")
def trio(module_lab_hosts):
    return module_lab_hosts(3)


def test_three_hosts_keep_their_changes_to_themselves(trio, lab):
    machine_group = pathlib.Path("/etc/group").read_text()
    probe = "/etc/berth-lab-probe"
    look = (f"getent group docker; echo group=$?; cat {probe} 2>/dev/null; echo file=$?; "
            "systemctl is-enabled berth-probe.service 2>/dev/null; systemctl is-active berth-probe.service")
    for i, h in enumerate(trio):
        # the changes go over real SSH, one host at a time ...
        h.ssh(f"groupadd docker && echo {h.name} > {probe} && cat > /etc/systemd/system/berth-probe.service "
              "&& systemctl enable --now berth-probe.service", input=UNIT)
        # ... and the hosts not yet changed see none of them (checked without ssh: nsenter)
        for other in trio[i + 1:]:
            out = other.exec(look, check=False).stdout.split()
            assert "group=2" in out and "file=1" in out and "enabled" not in out, out
    for h in trio:
        out = h.ssh(look).stdout.split()
        assert out[0].startswith("docker:x:") and out[1:4] == ["group=0", h.name, "file=0"], out
        assert out[4:] == ["enabled", "active"], out
        assert (pathlib.Path(h.upper) / probe.lstrip("/")).read_text().strip() == h.name
    # the machine and the shared base are untouched
    assert pathlib.Path("/etc/group").read_text() == machine_group
    assert not os.path.exists(probe)
    assert not os.path.exists("/etc/systemd/system/berth-probe.service")
    base = rootfs.base_path()
    assert not (base / probe.lstrip("/")).exists()
    assert "docker:" not in (base / "etc/group").read_text()
    assert not (base / "etc/systemd/system/berth-probe.service").exists()


def test_hosts_have_own_identity_and_see_only_the_bridge(trio, lab):
    for h in trio:
        out = h.ssh("hostname; echo routes=$(ip route | wc -l) defaults=$(ip route show default | wc -l); "
                    "ip route get 1.1.1.1 || echo NOROUTE; ip -4 addr show host0").stdout
        assert out.split()[0] == h.name, out
        assert "routes=1 defaults=0" in out and "NOROUTE" in out and f"inet {h.ip}/24" in out, out
    assert len({h.name for h in trio}) == 3
    assert len({h.ip for h in trio}) == 3
    # the bridge's MAC is its own, not its lowest port's (which changes as hosts come and go)
    bridge_link = subprocess.run(["ip", "-o", "link", "show", lab.bridge], stdout=subprocess.PIPE,
                                 check=True).stdout.decode()
    assert "link/ether %s " % net.bridge_mac(lab.info["subnet"]) in bridge_link, bridge_link
    # hosts reach each other on the bridge
    assert trio[0].ssh(connect_script(trio[1].ip, 22)).stdout.strip() == "ok"
    # ... and the machine only at its bridge address, even when a host adds a route out
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)
    try:
        port = srv.getsockname()[1]
        h = trio[2]
        assert h.ssh(connect_script(lab.bridge_ip, port)).stdout.strip() == "ok"
        out = h.ssh(connect_script(machine_address(), port)).stdout
        assert out.startswith("fail") and "unreachable" in out, out
        h.ssh(f"ip route add {machine_address()}/32 via {lab.bridge_ip}")
        try:
            out = h.ssh(connect_script(machine_address(), port)).stdout
            assert out.startswith("fail"), out  # dropped by the lab's INPUT rule
        finally:
            h.ssh(f"ip route del {machine_address()}/32")
    finally:
        srv.close()


def test_host_basics_keys_tester_sudo_bare_kernel(trio):
    h = trio[0]
    # strict host key checking against the lab's known_hosts file, as root and as tester
    assert h.ssh("id -un", user="tester").stdout.strip() == "tester"
    assert h.ssh("sudo -n true", user="tester", check=False).returncode != 0  # needs a password
    out = h.ssh("sudo -S -p '' id -u", user="tester", input=h.tester_password + "\n").stdout
    assert out.strip() == "0"
    # like a microVM kernel: br_netfilter and overlay built in and active, no modules tree
    active = h.ssh("test -e /proc/sys/net/bridge/bridge-nf-call-iptables && "
                   "grep -qw overlay /proc/filesystems && echo ok")
    assert active.stdout.strip() == "ok"
    assert h.ssh("modprobe -n br_netfilter", check=False).returncode != 0
    assert h.ssh("ls /lib/modules/$(uname -r)", check=False).returncode != 0
    assert h.exec("hostname").stdout.strip() == h.name
    assert h.ssh("systemctl is-system-running --wait").stdout.strip() == "running"
    assert h.ssh("cat /etc/machine-id").stdout.strip() != trio[1].ssh("cat /etc/machine-id").stdout.strip()
    fps = [h.exec("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1] for h in trio]
    assert len(set(fps)) == 3


def test_cli_up_down_leaves_nothing_behind(lab, trio):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    up = subprocess.run([sys.executable, "-m", "tests.lab", "up", "2", "--nested"], cwd=ROOT, env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180)
    assert up.returncode == 0, up.stderr
    hosts = [json.loads(line) for line in up.stdout.splitlines()]
    assert [sorted(h) for h in hosts] == [sorted(["name", "ip", "user", "key", "port", "lab", "known_hosts",
                                                  "flavour", "nested"])] * 2
    lab_id = hosts[0]["lab"]
    state = json.loads((lab_run_dir(lab_id) / "state.json").read_text())
    # a second lab running next to the session's gets its own subnet, bridge and cgroups
    assert state["subnet"] != lab.info["subnet"] and state["bridge"] != lab.bridge
    try:
        for h in hosts:
            opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                    "-o", f"UserKnownHostsFile={h['known_hosts']}"]
            r = subprocess.run(["ssh", "-i", h["key"], "-p", str(h["port"]), *opts, f"{h['user']}@{h['ip']}",
                                "hostname"], stdout=subprocess.PIPE, text=True)
            assert r.stdout.strip() == h["name"]
        pids = [p for r in state["hosts"].values() for p in (r["pid"], r["leader"])]
        assert all(os.path.exists(f"/proc/{p}") for p in pids)
        assert cgroups.pids(state["cgroup_root"])
        assert net.lab_rules(lab_id) and net.link_exists(state["bridge"])
    finally:
        down = subprocess.run([sys.executable, "-m", "tests.lab", "down", "--lab", lab_id], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert [p for p in pids if os.path.exists(f"/proc/{p}")] == []
    assert not net.link_exists(state["bridge"])
    links = os.listdir("/sys/class/net")
    assert [n for n in links if lab_id in n] == []
    assert net.lab_rules(lab_id) == [] and f"berth-lab:{lab_id}" not in subprocess.run(
        ["iptables", "-w", "-S"], stdout=subprocess.PIPE, text=True).stdout
    assert [h for h in cgroups.hierarchies() if (h / state["cgroup_root"]).exists()] == []
    assert lab_id not in pathlib.Path("/proc/self/mountinfo").read_text()
    assert not lab_run_dir(lab_id).exists() and not lab_var_dir(lab_id).exists()
    assert [n for n in os.listdir("/run/systemd/nspawn/propagate") if n.startswith(lab_id)] == []


NESTED_CHECKS = {
    "data dir is real ext4": "findmnt -no FSTYPE /var/lib/berth | grep -qx ext4",
    "unshare all namespaces": "unshare -m -p -f -n -u -i --mount-proc true",
    "overlay with upper on /var/lib/berth": (
        "d=/var/lib/berth/ov && mkdir -p $d/l $d/u $d/w $d/m && echo hi > $d/l/f && "
        "mount -t overlay overlay -o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m && "
        "echo new > $d/m/g && test -e $d/u/g && umount $d/m && rm -rf $d"),
    "mknod": "mknod /var/lib/berth/null c 1 3 && test -c /var/lib/berth/null && rm /var/lib/berth/null",
    "memory cgroup": ("mkdir /sys/fs/cgroup/memory/berth-t && echo 67108864 > "
                      "/sys/fs/cgroup/memory/berth-t/memory.limit_in_bytes && "
                      "sh -c 'echo $$ > /sys/fs/cgroup/memory/berth-t/cgroup.procs' && "
                      "rmdir /sys/fs/cgroup/memory/berth-t"),
    "pids cgroup": ("mkdir /sys/fs/cgroup/pids/berth-t && echo 10 > /sys/fs/cgroup/pids/berth-t/pids.max "
                    "&& rmdir /sys/fs/cgroup/pids/berth-t"),
    "keyring syscalls": ("python3 -c \"import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); "
                         "sys.exit(0 if l.syscall(250, 1, b'berth-t') >= 0 else ctypes.get_errno())\""),
    "bridge netfilter": ("test -e /proc/sys/net/bridge/bridge-nf-call-iptables && "
                         "sysctl -qw net.bridge.bridge-nf-call-iptables=1"),
}


def test_nested_host_can_run_an_engine(lab_hosts):
    (h,) = lab_hosts(1, nested=True)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = dict(zip(NESTED_CHECKS, pool.map(lambda c: h.ssh(c, check=False), NESTED_CHECKS.values())))
    failed = {k: (r.returncode, r.stderr.strip()) for k, r in results.items() if r.returncode != 0}
    assert failed == {}
    # the data dir is the machine-side per-host dir, not the machine's /var/lib/berth
    h.ssh("echo x > /var/lib/berth/marker")
    assert (pathlib.Path(h.data) / "marker").read_text() == "x\n"


def test_el7_host_installs_from_a_served_repo(lab, lab_hosts, tmp_path):
    (h,) = lab_hosts(1, flavour="el7")
    osr = h.ssh("cat /etc/os-release").stdout
    assert 'ID="centos"' in osr and 'VERSION_ID="7"' in osr and 'PRETTY_NAME="CentOS Linux 7 (Core)"' in osr
    assert h.ssh("yum --version").returncode == 0
    assert "mirrorlist=http://mirrorlist.centos.org/" in h.ssh("cat /etc/yum.repos.d/CentOS-Base.repo").stdout
    repo = rpmrepo.build_repo(tmp_path / "el7", [rpmrepo.Package(
        "berth-probe", "1.2", files={"/usr/bin/berth-probe": "#!/bin/sh\necho probe-ok\n"},
        provides=["docker-ce"])])
    url = lab.serve_dir(repo)
    h.ssh("cat > /etc/yum.repos.d/lab.repo", input=rpmrepo.repo_file("lab", url))
    yum = "yum -y -q --disablerepo='*' --enablerepo=lab"
    h.ssh(f"{yum} makecache")
    h.ssh(f"{yum} install docker-ce")
    assert h.ssh("berth-probe").stdout.strip() == "probe-ok"
    assert h.ssh("rpm -q berth-probe").stdout.strip() == "berth-probe-1.2-1.el7.noarch"


def test_shared_lab_host_fixture(lab, lab_host):
    assert lab_host.name in [h.name for h in lab.hosts()]
    out = lab_host.ssh("cat /etc/resolv.conf; hostname").stdout
    assert "nameserver" not in out and out.split()[-1] == lab_host.name


def test_mirror_comes_from_the_machines_apt_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    assert rootfs.find_mirror(str(tmp_path)) == "http://deb.debian.org/debian"  # nothing configured
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n")
    assert rootfs.find_mirror(str(tmp_path)) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb-src deb\nURIs: http://local.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    assert rootfs.find_mirror(str(tmp_path)) == "http://local.example/debian"


def test_upper_dirs_follow_base_symlinks_and_attributes(tmp_path):
    from tests.lab.upper import Upper

    base, up = tmp_path / "base", tmp_path / "upper"
    (base / "usr/lib").mkdir(parents=True)
    (base / "lib").symlink_to("usr/lib")
    (base / "home/tester").mkdir(parents=True)
    os.chown(base / "home/tester", 1000, 1000)
    (base / "home/tester").chmod(0o750)
    up.mkdir()
    u = Upper(base, up)
    assert u.resolve("lib/modules/x") == "usr/lib/modules/x"
    u.write("lib/modules/x/modules.builtin", "a\n")
    assert not (up / "lib").exists() and (up / "usr/lib/modules/x/modules.builtin").read_text() == "a\n"
    u.write("home/tester/.ssh/authorized_keys", "k\n", 0o600, (1000, 1000))
    st = (up / "home/tester").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1000, 0o750)


def test_cli_bad_input_says_what_is_wrong():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "tests.lab", "down", "--lab", "../etc"], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 1 and "bad lab id '../etc'" in p.stderr and p.stderr.count("\n") == 1
    p = subprocess.run([sys.executable, "-m", "tests.lab", "up", "0"], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 2 and "N must be at least 1" in p.stderr
