"""`provision host` over real SSH on lab hosts: configures, is idempotent, --check shows exact
diffs and writes nothing, daemon.json merge/refusal, sudo users, host keys, bad input."""

import json
import shutil

import pytest

from tests.provision.labutil import ROOT, build_apt_repo, known_hosts, provision, provision_json, ssh_args

pytestmark = pytest.mark.lab

SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.ip_forward")
EXISTING = {"log-driver": "local", "log-opts": {"max-size": "10m"}, "debug": True}
# records every modprobe call (lab hosts, like microVM kernels, have br_netfilter and overlay
# built in and no /lib/modules tree: nothing may be loaded, only looked up with -n)
MODPROBE_SPY = '#!/bin/sh\necho "$*" >> /run/modprobe.calls\nexec /usr/sbin/modprobe "$@"\n'


@pytest.fixture(scope="module")
def fleet(plab, tmp_path_factory):
    hosts = plab.up(5)
    tmp = tmp_path_factory.mktemp("prov")
    mirror = plab.serve_dir(str(build_apt_repo(tmp / "mirror")))
    kh = known_hosts(hosts, tmp / "known_hosts")
    return hosts, kh, mirror, tmp


def host_args(mirror):
    return [
        "--mirror",
        mirror,
        "--no-gpgcheck",
        "--registry-mirror",
        "https://registry.example.com",
        "--daemon-opt",
        'log-opts.max-size="10m"',  # max-file rotates only with a max-size, in berthd as in dockerd
        "--daemon-opt",
        'log-opts.max-file="3"',  # berthd (as dockerd) takes log-opts values as strings only
        "--gid",
        "2375",
        "--user",
        "tester",
    ]


def test_three_hosts_at_once_then_rerun_changes_nothing(fleet):
    hosts, kh, mirror, _ = fleet
    three = hosts[:3]
    three[0].exec("mkdir -p /etc/berth && cat > /etc/berth/daemon.json", input=json.dumps(EXISTING))
    deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n"
    three[1].exec("cat > /etc/apt/sources.list.d/debian.sources", input=deb822)
    for h in three:
        h.exec("cat > /usr/local/sbin/modprobe && chmod 755 /usr/local/sbin/modprobe", input=MODPROBE_SPY)
    rc, reps = provision_json(
        "host", "--no-install", *[h.ip for h in three], *host_args(mirror), *ssh_args(hosts, kh)
    )
    assert rc == 0, reps
    for h in three:
        rep = reps[h.ip]
        assert rep["status"] == "changed" and rep["failed"] == 0, rep
        br = next(c for c in rep["checks"] if c["name"] == "br_netfilter")
        assert br["status"] == "pass" and "built into the kernel" in br["detail"], br
        calls = h.exec("cat /run/modprobe.calls 2>/dev/null; rm -f /run/modprobe.calls").stdout
        assert calls == "", calls  # nothing loaded, nor even looked up: both are active
        h.ssh("modprobe -n -q br_netfilter || true")  # the spy is on the PATH provision uses
        assert h.exec("cat /run/modprobe.calls; rm -f /usr/local/sbin/modprobe /run/modprobe.calls").stdout
        assert h.ssh("cat /etc/modules-load.d/berth.conf").stdout.splitlines()[1:] == [
            "overlay",
            "br_netfilter",
        ]
        conf = h.ssh("cat /etc/sysctl.d/99-berth.conf").stdout
        assert all(f"{k} = 1" in conf for k in SYSCTLS)
        assert h.ssh("sysctl -n " + " ".join(SYSCTLS)).stdout.split() == ["1", "1", "1"]
        sources = h.ssh("cat /etc/apt/sources.list").stdout
        assert f"deb [trusted=yes] {mirror}/debian bookworm main" in sources
        assert f"deb [trusted=yes] {mirror}/debian-security bookworm-security main" in sources
        assert h.ssh("ls /var/lib/apt/lists/").stdout.count("bookworm") >= 3  # apt-get update ran
        assert h.ssh("getent group docker").stdout.strip() == "docker:x:2375:tester"
        assert (
            h.ssh("stat -c '%a %U %G' /etc/berth/daemon.json /etc/sysctl.d/99-berth.conf").stdout.split()
            == ["644", "root", "root"] * 2
        )
    # the deb822 distro sources of newer images are disabled, kept for restore
    assert three[1].ssh("ls /etc/apt/sources.list.d").stdout.split() == ["debian.sources.berth-orig"]
    merged = json.loads(three[0].ssh("cat /etc/berth/daemon.json").stdout)
    assert merged == dict(
        EXISTING,
        **{
            "log-opts": {"max-size": "10m", "max-file": "3"},
            "registry-mirrors": ["https://registry.example.com"],
        },
    )
    assert json.loads(three[0].ssh("cat /etc/berth/daemon.json.bak").stdout) == EXISTING
    assert "must log in again" in json.dumps(reps[three[0].ip])
    rc, reps = provision_json(  # a rolling rerun: 2 hosts per batch
        "host",
        "--no-install",
        "--serial",
        "2",
        *[h.ip for h in three],
        *host_args(mirror),
        *ssh_args(hosts, kh),
    )
    assert rc == 0
    assert [reps[h.ip]["changed"] for h in three] == [0, 0, 0], reps


def test_check_after_a_manual_edit_shows_exactly_that_diff_and_writes_nothing(fleet):
    hosts, kh, mirror, _ = fleet
    h = hosts[0]
    h.ssh("sed -i 's/^net.ipv4.ip_forward = 1/net.ipv4.ip_forward = 0/' /etc/sysctl.d/99-berth.conf")
    before = h.ssh(
        "cat /etc/sysctl.d/99-berth.conf; stat -c %Y /etc/sysctl.d/99-berth.conf; "
        "ls -la --time-style=full-iso /etc/sysctl.d /etc/berth /etc/apt"
    ).stdout
    rc, reps = provision_json(
        "host", "--no-install", h.ip, "--check", *host_args(mirror), *ssh_args(hosts, kh)
    )
    assert rc == 0
    steps = {s["name"]: s for s in reps[h.ip]["steps"]}
    changed = [n for n, s in steps.items() if s["status"] != "ok"]
    assert changed == ["sysctls"], steps
    diff = "".join(steps["sysctls"]["diffs"])
    lines = diff.splitlines()
    assert lines[:2] == ["--- a/etc/sysctl.d/99-berth.conf", "+++ b/etc/sysctl.d/99-berth.conf"]
    assert lines[2] == "@@ -2,7 +2,7 @@" and sum(ln.startswith("@@") for ln in lines) == 1  # 3 lines around
    assert [ln for ln in lines[3:] if ln[0] in "+-"] == [
        "-net.ipv4.ip_forward = 0",
        "+net.ipv4.ip_forward = 1",
    ]
    p = provision("host", "--no-install", h.ip, "--check", *host_args(mirror), *ssh_args(hosts, kh))
    assert "-net.ipv4.ip_forward = 0" in p.stdout and "+net.ipv4.ip_forward = 1" in p.stdout
    assert (
        h.ssh(
            "cat /etc/sysctl.d/99-berth.conf; stat -c %Y /etc/sysctl.d/99-berth.conf; "
            "ls -la --time-style=full-iso /etc/sysctl.d /etc/berth /etc/apt"
        ).stdout
        == before
    )
    rc, reps = provision_json(
        "host", "--no-install", h.ip, "--diff", *host_args(mirror), *ssh_args(hosts, kh)
    )
    assert rc == 0 and reps[h.ip]["changed"] == 1 and "+net.ipv4.ip_forward = 1" in json.dumps(reps)


def test_broken_daemon_json_stops_that_host_untouched_others_carry_on(fleet):
    hosts, kh, mirror, _ = fleet
    bad, good = hosts[3], hosts[4]
    broken = '{\n  "debug": true\n  "log-driver": "json-file"\n}\n'
    bad.exec("mkdir -p /etc/berth && cat > /etc/berth/daemon.json", input=broken)
    rc, reps = provision_json("host", "--no-install", bad.ip, good.ip, *ssh_args(hosts, kh))
    assert rc == 1
    assert reps[good.ip]["status"] == "changed"
    err = reps[bad.ip]["error"]
    assert "/etc/berth/daemon.json is not valid JSON (line 3 column 3" in err and "\n" not in err
    assert bad.ssh("cat /etc/berth/daemon.json").stdout == broken
    assert bad.ssh("ls /etc/berth /etc/sysctl.d /etc/modules-load.d").stdout.split().count("daemon.json") == 1
    assert "berth.conf" not in bad.ssh("ls /etc/modules-load.d").stdout  # nothing half-applied
    bad.exec("rm /etc/berth/daemon.json")


def test_non_root_sudo_user_and_wrong_sudo_password(fleet, tmp_path):
    hosts, kh, mirror, _ = fleet
    h = hosts[3]
    pw = tmp_path / "pw"
    pw.write_text(h.tester_password + "\n")
    target = f"{h.tester}@{h.ip}"
    rc, reps = provision_json(
        "host", "--no-install", target, "--sudo-password-file", pw, *ssh_args(hosts, kh)
    )
    assert rc == 0 and reps[target]["status"] == "changed", reps
    assert h.ssh("stat -c %U /etc/sysctl.d/99-berth.conf").stdout.strip() == "root"
    rc, reps = provision_json(
        "host", "--no-install", target, "--sudo-password-file", pw, *ssh_args(hosts, kh)
    )
    assert rc == 0 and reps[target]["changed"] == 0
    # SSH password login (--ask-pass reads it; without a terminal, from stdin), no key at all
    rc, reps = provision_json(
        "check",
        target,
        "--ask-pass",
        "--sudo-password-file",
        pw,
        "--known-hosts",
        kh,
        input=h.tester_password + "\n",
    )
    assert rc == 0 and reps[target]["status"] == "ok", reps
    p = provision("check", target, "--ask-pass", "--known-hosts", kh, "--timeout", "5", input="wrong\n")
    assert p.returncode == 1 and f"SSH authentication refused for {target}:22" in p.stdout
    pw.write_text("not-the-password\n")
    p = provision("host", "--no-install", target, "--sudo-password-file", pw, *ssh_args(hosts, kh))
    assert p.returncode == 1 and f"wrong sudo password for tester@{h.ip}" in p.stdout
    p = provision("host", "--no-install", target, *ssh_args(hosts, kh))
    assert p.returncode == 1 and "needs a password" in p.stdout


def test_unknown_host_key_refused_unless_accepted(fleet, tmp_path):
    hosts, _, _, _ = fleet
    h = hosts[4]
    kh = tmp_path / "kh"
    args = ["check", h.ip, "-i", h.key, "--known-hosts", kh]
    p = provision(*args)
    assert p.returncode == 1 and "unknown host key" in p.stdout and "--accept-new-host-keys" in p.stdout
    assert not kh.exists()
    p = provision(*args, "--accept-new-host-keys")
    assert p.returncode == 0, p.stdout
    assert h.ip in kh.read_text()
    assert provision(*args).returncode == 0  # recorded: trusted from now on


def test_bad_input_ends_only_that_host_with_one_line(fleet, tmp_path):
    hosts, kh, mirror, _ = fleet
    good = hosts[4]
    dead_ip = good.ip.rsplit(".", 1)[0] + ".250"
    rc, reps = provision_json(
        "host", "--no-install", good.ip, f"root@{dead_ip}", f"nobody@{good.ip}", *ssh_args(hosts, kh)
    )
    assert rc == 1
    assert reps[good.ip]["status"] in ("ok", "changed")
    assert reps[f"root@{dead_ip}"]["error"].startswith(f"cannot reach root@{dead_ip}:22")
    assert reps[f"nobody@{good.ip}"]["error"].startswith(f"SSH authentication refused for nobody@{good.ip}")
    p = provision("host", "--no-install", good.ip, "--mirror", "ftp//nowhere", *ssh_args(hosts, kh))
    assert p.returncode == 2 and "invalid mirror URL 'ftp//nowhere'" in p.stderr
    # a template that needs a variable nobody provides: that host fails, nothing is written
    tdir = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", tdir)
    (tdir / "sysctl.conf.j2").write_text("{{ sysctl_tuning_profile }}\n")
    good.exec("rm -f /etc/sysctl.d/99-berth.conf /etc/modules-load.d/berth.conf")
    p = provision("host", "--no-install", good.ip, *ssh_args(hosts, kh), env={"BERTH_TEMPLATES": str(tdir)})
    assert p.returncode == 1 and "missing variable ('sysctl_tuning_profile' is undefined)" in p.stdout
    assert good.exec("ls /etc/sysctl.d /etc/modules-load.d").stdout.count("berth.conf") == 0


def test_ssh_config_alias_and_jump_host(fleet, tmp_path):
    hosts, kh, _, _ = fleet
    jump, target = hosts[1], hosts[2]
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host labtarget\n  HostName {target.ip}\n  User root\n  IdentityFile {target.key}\n")
    rc, reps = provision_json("check", "labtarget", "--ssh-config", cfg, "--known-hosts", kh)
    assert rc == 0 and reps["labtarget"]["status"] == "ok", reps
    rc, reps = provision_json("check", target.ip, "--jump", f"root@{jump.ip}", *ssh_args(hosts, kh))
    assert rc == 0 and reps[target.ip]["status"] == "ok", reps
    log = target.exec("journalctl -q --no-pager -u ssh -g 'Accepted publickey for root'").stdout
    assert f"from {jump.ip} " in log  # the session came through the jump host
