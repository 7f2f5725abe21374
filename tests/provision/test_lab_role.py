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
from tests.provision.labutil import ROOT, build_apt_repo, known_hosts, provision_json, ssh_args

pytestmark = pytest.mark.lab

MIRROR = "https://registry-mirror.example.com"
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


def test_role_writes_what_provision_writes(pair):
    (a, b), kh, url, engine, tmp = pair
    before = {h.name: snapshot(h) for h in (a, b)}
    rc, reps = provision_json(
        "host", f"root@{a.ip}", "--bundle", engine, "--mirror", url, "--no-gpgcheck", "--user", "tester",
        "--registry-mirror", MIRROR,
        "--daemon-opt", 'log-opts.max-size="10m"', "--daemon-opt", 'log-opts.max-file="3"',
        *ssh_args([a, b], kh),
    )  # fmt: skip
    assert rc == 0, json.dumps(reps, indent=1)[-3000:]
    extra = {
        "berth_bundle": engine,
        "berth_mirror": url,
        "berth_gpgcheck": False,
        "berth_users": ["tester"],
        "berth_registry_mirrors": [MIRROR],
        "berth_daemon_json": {"log-opts": {"max-size": "10m", "max-file": "3"}},
    }
    p = ansible(tmp, b, a.key, kh, extra=extra)
    assert p.returncode == 0 and recap(p.stdout, b.name)["failed"] == 0, p.stdout[-4000:]
    by_provision = changes(before[a.name], snapshot(a))
    by_ansible = changes(before[b.name], snapshot(b))
    assert "/usr/local/bin/berthd" in by_provision and "/etc/sysctl.d/99-berth.conf" in by_provision
    assert "/usr/local/lib/berth/provision-state.json" in by_provision
    assert "/etc/apt/sources.list.bak" in by_provision and "/etc/group" in by_provision
    only = {p: (by_provision.get(p), by_ansible.get(p)) for p in set(by_provision) | set(by_ansible)
            if by_provision.get(p) != by_ansible.get(p)}  # fmt: skip
    assert only == {}, json.dumps(only, indent=1)
    # the same engine state
    for h in (a, b):
        assert h.exec("systemctl is-enabled berthd; systemctl is-active berthd").stdout.split() == [
            "enabled",
            "active",
        ]
        info = json.loads(h.exec("berth info -f json").stdout)
        assert info["Driver"].startswith("overlay") and info["RegistryConfig"]["Mirrors"] == [MIRROR]
        assert "berth-probe" in h.exec("berth images").stdout
        assert h.ssh("berth run --rm berth-probe echo ok", user="tester").stdout.strip() == "ok"

    # the second run changes nothing; provision finds nothing to change either
    p = ansible(tmp, b, a.key, kh, extra=extra)
    counts = recap(p.stdout, b.name)
    assert p.returncode == 0 and counts["changed"] == 0 and counts["failed"] == 0, p.stdout[-4000:]
    rc, reps = provision_json(
        "host", f"root@{b.ip}", "--check", "--bundle", engine, "--mirror", url, "--no-gpgcheck",
        "--user", "tester", "--registry-mirror", MIRROR,
        "--daemon-opt", 'log-opts.max-size="10m"', "--daemon-opt", 'log-opts.max-file="3"',
        *ssh_args([a, b], kh),
    )  # fmt: skip
    rep = reps[f"root@{b.ip}"]
    assert rc == 0 and rep["status"] == "ok" and rep["changed"] == 0, json.dumps(rep, indent=1)[-3000:]

    # --check --diff: a manual edit is shown, nothing is written
    b.exec("sed -i 's/^net.ipv4.ip_forward = 1/net.ipv4.ip_forward = 0/' /etc/sysctl.d/99-berth.conf")
    p = ansible(tmp, b, a.key, kh, "--check", "--diff", extra=extra)
    assert p.returncode == 0, p.stdout[-4000:]
    assert "-net.ipv4.ip_forward = 0" in p.stdout and "+net.ipv4.ip_forward = 1" in p.stdout
    assert "ip_forward = 0" in b.exec("cat /etc/sysctl.d/99-berth.conf").stdout
