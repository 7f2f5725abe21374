"""The Ansible role (playbooks/site.yml) against `provision host` on fresh lab hosts of each
family (Debian, EL7-shaped): the files both write under /etc and /usr/local are byte-identical
with the same modes and owners, the engine ends in the same state, a second ansible-playbook
run changes nothing, provision finds nothing to change on the hosts Ansible made, and --check
--diff shows a manual edit without writing. Each tool runs once for both families (provision's
fan-out, Ansible's forks), as a team would run them."""

import concurrent.futures
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
    known_hosts,
    provision_json,
    ssh_args,
    up_both_families,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

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


def ansible(tmp, hosts, key, kh, *args, extra=None):
    """One ansible-playbook run of site.yml on these hosts (in parallel, Ansible's forks)."""
    inv = tmp / "inventory"
    line = "{} ansible_host={} ansible_user=root ansible_ssh_private_key_file={}\n"
    inv.write_text("".join(line.format(h.name, h.ip, key) for h in hosts))
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
def hosts(plab, tmp_path_factory):
    """Two Debian hosts and two EL7-shaped ones (CentOS 7 os-release, yum = dnf), fresh; one
    mirror on the lab bridge serves both families (the engine's OS packages for EL7 come from
    stand-in RPMs in a CentOS-vault-shaped tree)."""
    tmp = tmp_path_factory.mktemp("role")
    made, url = up_both_families(plab, 2, tmp)
    kh = known_hosts(made, tmp / "known_hosts")
    b = bundle.build(src=committed_tree(tmp / "committed") / "runtime")
    (tmp / b.filename).write_bytes(b.data)
    yield made, kh, url, str(tmp / b.filename), tmp
    plab.stop(made)


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


def each(fn, items):
    """fn(item) for every item, at once (lab commands wait on ssh and on the hosts)."""
    with concurrent.futures.ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(fn, items))


def same_engine_state(h):
    assert h.exec("systemctl is-enabled berthd; systemctl is-active berthd").stdout.split() == [
        "enabled",
        "active",
    ]
    info = json.loads(h.exec("berth info -f json").stdout)
    assert info["Driver"].startswith("overlay") and info["RegistryConfig"]["Mirrors"] == [MIRROR]
    assert "berth-probe" in h.exec("berth images").stdout
    assert h.ssh("berth run --rm berth-probe echo ok", user="tester").stdout.strip() == "ok"


@pytest.mark.timeout(1500)  # three runs of the role and two of provision: ~5 min at load 40
def test_role_writes_what_provision_writes_on_debian_and_el7(hosts):
    """`provision host` on one host of each family, the role on the other (both fresh, each
    tool in one run for both families): what each changed under /etc and /usr/local is
    identical per family, and so is the engine's state."""
    made, kh, url, engine, tmp = hosts
    deb_a, deb_b, el7_a, el7_b = made
    by_tool, by_ansible = {}, {}
    before = dict(zip((h.name for h in made), each(snapshot, made)))
    rc, reps = provision_json(
        "host", f"root@{deb_a.ip}", f"root@{el7_a.ip}", "--bundle", engine, "--mirror", url,
        "--no-gpgcheck", *PROVISION_OPTS, *ssh_args(made, kh),
    )  # fmt: skip
    assert rc == 0, json.dumps(reps, indent=1)[-3000:]
    extra = role_vars(engine, url)
    p = ansible(tmp, [deb_b, el7_b], deb_a.key, kh, extra=extra)
    assert p.returncode == 0, p.stdout[-4000:]
    after = dict(zip((h.name for h in made), each(snapshot, made)))
    for a, b in ((deb_a, deb_b), (el7_a, el7_b)):
        assert recap(p.stdout, b.name)["failed"] == 0, p.stdout[-4000:]
        by_tool[a.name] = changes(before[a.name], after[a.name])
        by_ansible[b.name] = changes(before[b.name], after[b.name])
        mine, theirs = by_tool[a.name], by_ansible[b.name]
        only = {f: (mine.get(f), theirs.get(f)) for f in set(mine) | set(theirs)
                if mine.get(f) != theirs.get(f)}  # fmt: skip
        assert only == {}, f"{a.name} vs {b.name}: " + json.dumps(only, indent=1)
    deb = by_tool[deb_a.name]
    assert "/usr/local/bin/berthd" in deb and "/etc/sysctl.d/99-berth.conf" in deb
    assert "/usr/local/lib/berth/provision-state.json" in deb
    assert "/etc/apt/sources.list.bak" in deb and "/etc/group" in deb
    # the vault mirror replaced CentOS-Base.repo (the original kept), yum installed the missing
    # package through real dnf on both EL7 hosts
    el7 = by_tool[el7_a.name]
    assert {"/etc/yum.repos.d/CentOS-Base.repo", "/etc/yum.repos.d/CentOS-Base.repo.berth-orig"} <= set(el7)
    for h in (el7_a, el7_b):
        assert f"baseurl={url}/centos-vault/7.9.2009/os/$basearch/" in h.exec(
            "cat /etc/yum.repos.d/CentOS-Base.repo").stdout
        assert h.exec("rpm -q --qf '%{NAME}' iproute").stdout == "iproute"
    each(same_engine_state, made)

    # the second run changes nothing; provision finds nothing to change on the role's hosts
    p = ansible(tmp, [deb_b, el7_b], deb_a.key, kh, extra=extra)
    assert p.returncode == 0, p.stdout[-4000:]
    for b in (deb_b, el7_b):
        counts = recap(p.stdout, b.name)
        assert counts["changed"] == 0 and counts["failed"] == 0, p.stdout[-4000:]
    rc, reps = provision_json(
        "host", f"root@{deb_b.ip}", f"root@{el7_b.ip}", "--check", "--bundle", engine, "--mirror", url,
        "--no-gpgcheck", *PROVISION_OPTS, *ssh_args(made, kh),
    )  # fmt: skip
    assert rc == 0, json.dumps(reps, indent=1)[-3000:]
    for b in (deb_b, el7_b):
        rep = reps[f"root@{b.ip}"]
        assert rep["status"] == "ok" and rep["changed"] == 0, json.dumps(rep, indent=1)[-3000:]

    # --check --diff: a manual edit is shown, nothing is written
    deb_b.exec("sed -i 's/^net.ipv4.ip_forward = 1/net.ipv4.ip_forward = 0/' /etc/sysctl.d/99-berth.conf")
    p = ansible(tmp, [deb_b], deb_a.key, kh, "--check", "--diff", extra=extra)
    assert p.returncode == 0, p.stdout[-4000:]
    assert "-net.ipv4.ip_forward = 0" in p.stdout and "+net.ipv4.ip_forward = 1" in p.stdout
    assert "ip_forward = 0" in deb_b.exec("cat /etc/sysctl.d/99-berth.conf").stdout
