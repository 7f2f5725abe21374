"""The Ansible role (playbooks/site.yml) against `provision host` on two fresh lab hosts: the
files both write under /etc and /usr/local are byte-identical with the same modes and
owners, the engine ends in the same state, a second ansible-playbook run changes nothing,
provision finds nothing to change on the host Ansible made, and --check --diff shows a manual
edit without writing."""

import json
import os
import re
import subprocess
import sys

import pytest

from provision import bundle
from tests.provision.installutil import committed_tree
from tests.provision.labutil import (
    ROOT,
    build_apt_repo,
    build_el7_mirror,
    known_hosts,
    provision_json,
    ssh_args,
)

pytestmark = pytest.mark.lab

MIRROR = "https://registry-mirror.example.com"
# what an EL7 host lacks for the engine (the el7 flavour is Debian underneath: see test_install.py)
EL7_PACKAGES = ["python3", "iptables", "iproute", "util-linux", "tar"]
# every file and link under /etc and /usr/local: mode, owner, type, link target, sha256 (of a
# .pyc without its 16-byte header, which holds the source's mtime)
SNAPSHOT = r"""
import hashlib, json, os, stat
out = {}
for top in ("/etc", "/usr/local"):
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            e = [oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, stat.S_IFMT(st.st_mode)]
            if stat.S_ISLNK(st.st_mode):
                e.append(os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                data = open(p, "rb").read()
                e.append(hashlib.sha256(data[16:] if p.endswith(".pyc") else data).hexdigest())
            out[p] = e
print(json.dumps(out))
"""


def snapshot(h):
    return json.loads(h.exec(["python3", "-c", SNAPSHOT]).stdout)


def changes(before, after):
    return {p: after.get(p) for p in set(before) | set(after) if before.get(p) != after.get(p)}


def ansible(tmp, h, key, kh, *args, extra=None):
    inv = tmp / "inventory"
    inv.write_text(f"{h.name} ansible_host={h.ip} ansible_user=root ansible_ssh_private_key_file={key}\n")
    (tmp / "vars.json").write_text(json.dumps(extra or {}))
    env = dict(
        os.environ,
        PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        ANSIBLE_HOME=str(tmp / "ah"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ah/tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_SSH_ARGS=f"-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
        ANSIBLE_PIPELINING="1",
    )
    return subprocess.run(
        ["ansible-playbook", "-i", str(inv), "-e", f"@{tmp / 'vars.json'}", *args,
         str(ROOT / "playbooks/site.yml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=900,
    )  # fmt: skip


def recap(out, name):
    m = re.search(rf"^{re.escape(name)}\s+:\s+(.*)$", out, re.M)
    assert m, out[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


@pytest.fixture(scope="module")
def pair(plab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("role")
    hosts = plab.up(2, nested=True)
    url = plab.serve_dir(str(build_apt_repo(tmp / "mirror")))
    kh = known_hosts(hosts, tmp / "known_hosts")
    b = bundle.build(src=committed_tree(tmp / "committed") / "runtime")
    (tmp / b.filename).write_bytes(b.data)
    yield hosts, kh, url, str(tmp / b.filename), tmp
    plab.stop(hosts)


PROVISION_OPTS = [
    "--user", "tester", "--registry-mirror", MIRROR,
    "--daemon-opt", 'log-opts.max-size="10m"', "--daemon-opt", 'log-opts.max-file="3"',
]  # fmt: skip


def role_vars(engine, url):
    """The role's variables for what PROVISION_OPTS asks of provision."""
    return {
        "berth_bundle": engine,
        "berth_mirror": url,
        "berth_gpgcheck": False,
        "berth_users": ["tester"],
        "berth_registry_mirrors": [MIRROR],
        "berth_daemon_json": {"log-opts": {"max-size": "10m", "max-file": "3"}},
    }


def provision_then_role(a, b, kh, url, engine, tmp):
    """`provision host` on a, the role on b (both fresh): what each changed under /etc and
    /usr/local, asserted identical; returns provision's changes."""
    before = {h.name: snapshot(h) for h in (a, b)}
    rc, reps = provision_json(
        "host", f"root@{a.ip}", "--bundle", engine, "--mirror", url, "--no-gpgcheck", *PROVISION_OPTS,
        *ssh_args([a, b], kh),
    )  # fmt: skip
    assert rc == 0, json.dumps(reps, indent=1)[-3000:]
    p = ansible(tmp, b, a.key, kh, extra=role_vars(engine, url))
    assert p.returncode == 0 and recap(p.stdout, b.name)["failed"] == 0, p.stdout[-4000:]
    by_provision = changes(before[a.name], snapshot(a))
    by_ansible = changes(before[b.name], snapshot(b))
    only = {p: (by_provision.get(p), by_ansible.get(p)) for p in set(by_provision) | set(by_ansible)
            if by_provision.get(p) != by_ansible.get(p)}  # fmt: skip
    assert only == {}, json.dumps(only, indent=1)
    return by_provision


def same_engine_state(hosts):
    for h in hosts:
        assert h.exec("systemctl is-enabled berthd; systemctl is-active berthd").stdout.split() == [
            "enabled",
            "active",
        ]
        info = json.loads(h.exec("berth info -f json").stdout)
        assert info["Driver"].startswith("overlay") and info["RegistryConfig"]["Mirrors"] == [MIRROR]
        assert "berth-probe" in h.exec("berth images").stdout
        assert h.ssh("berth run --rm berth-probe echo ok", user="tester").stdout.strip() == "ok"


@pytest.mark.timeout(1500)  # four runs of the role and two of provision: ~10 min at load 40
def test_role_writes_what_provision_writes(pair):
    (a, b), kh, url, engine, tmp = pair
    by_provision = provision_then_role(a, b, kh, url, engine, tmp)
    extra = role_vars(engine, url)
    assert "/usr/local/bin/berthd" in by_provision and "/etc/sysctl.d/99-berth.conf" in by_provision
    assert "/usr/local/lib/berth/provision-state.json" in by_provision
    assert "/etc/apt/sources.list.bak" in by_provision and "/etc/group" in by_provision
    same_engine_state((a, b))

    # the second run changes nothing; provision finds nothing to change either
    p = ansible(tmp, b, a.key, kh, extra=extra)
    counts = recap(p.stdout, b.name)
    assert p.returncode == 0 and counts["changed"] == 0 and counts["failed"] == 0, p.stdout[-4000:]
    rc, reps = provision_json(
        "host", f"root@{b.ip}", "--check", "--bundle", engine, "--mirror", url, "--no-gpgcheck",
        *PROVISION_OPTS, *ssh_args([a, b], kh),
    )  # fmt: skip
    rep = reps[f"root@{b.ip}"]
    assert rc == 0 and rep["status"] == "ok" and rep["changed"] == 0, json.dumps(rep, indent=1)[-3000:]

    # --check --diff: a manual edit is shown, nothing is written
    b.exec("sed -i 's/^net.ipv4.ip_forward = 1/net.ipv4.ip_forward = 0/' /etc/sysctl.d/99-berth.conf")
    p = ansible(tmp, b, a.key, kh, "--check", "--diff", extra=extra)
    assert p.returncode == 0, p.stdout[-4000:]
    assert "-net.ipv4.ip_forward = 0" in p.stdout and "+net.ipv4.ip_forward = 1" in p.stdout
    assert "ip_forward = 0" in b.exec("cat /etc/sysctl.d/99-berth.conf").stdout


@pytest.fixture(scope="module")
def el7_pair(plab, tmp_path_factory):
    """Two EL7-shaped hosts (CentOS 7 os-release, yum = dnf); the engine's OS packages come
    from stand-in RPMs in a CentOS-vault-shaped mirror on the lab bridge."""
    tmp = tmp_path_factory.mktemp("role-el7")
    hosts = plab.up(2, nested=True, flavour="el7")
    url = plab.serve_dir(str(build_el7_mirror(tmp / "mirror", packages=EL7_PACKAGES)))
    kh = known_hosts(hosts, tmp / "known_hosts")
    b = bundle.build(src=committed_tree(tmp / "committed") / "runtime")
    (tmp / b.filename).write_bytes(b.data)
    yield hosts, kh, url, str(tmp / b.filename), tmp
    plab.stop(hosts)


@pytest.mark.timeout(1500)
def test_role_writes_what_provision_writes_on_el7(el7_pair):
    (a, b), kh, url, engine, tmp = el7_pair
    by_provision = provision_then_role(a, b, kh, url, engine, tmp)
    # the vault mirror replaced CentOS-Base.repo (the original kept), yum installed the missing
    # package through real dnf on both hosts
    assert "/etc/yum.repos.d/CentOS-Base.repo" in by_provision
    assert "/etc/yum.repos.d/CentOS-Base.repo.berth-orig" in by_provision
    for h in (a, b):
        assert f"baseurl={url}/centos-vault/7.9.2009/os/$basearch/" in h.exec(
            "cat /etc/yum.repos.d/CentOS-Base.repo").stdout
        assert h.exec("rpm -q --qf '%{NAME}' iproute").stdout == "iproute"
    same_engine_state((a, b))
    p = ansible(tmp, b, a.key, kh, extra=role_vars(engine, url))
    counts = recap(p.stdout, b.name)
    assert p.returncode == 0 and counts["changed"] == 0 and counts["failed"] == 0, p.stdout[-4000:]
