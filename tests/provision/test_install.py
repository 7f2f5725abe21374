"""`provision host` installs, enables and proves berth's engine on nested lab hosts over real
SSH: systemd unit, socket root:docker 0660, a docker-group user running containers through
its own login, idempotent reruns that restart nothing, one restart per config change, rollback
of a broken config, upgrade in place keeping data, uninstall back to the original file list."""

import json

import pytest

from provision import bundle
from tests.provision.installutil import committed_tree
from tests.provision.labutil import (
    known_hosts,
    provision,
    provision_json,
    ssh_args,
    up_both_families,
)

pytestmark = pytest.mark.lab

MIRROR_A = "https://mirror-a.example.com"
MIRROR_B = "https://mirror-b.example.com"
PROBE = "berth-probe:latest"
# what provision may touch: compared as file lists before provisioning and after uninstall
LISTED = "/etc /usr/local /run/systemd/system"


def file_list(h, extra=""):
    return h.exec(f"find {LISTED} {extra} -xdev 2>/dev/null | sort", check=False).stdout.split("\n")


def service(h):
    out = h.exec("systemctl show berthd -p MainPID -p ActiveEnterTimestamp -p ActiveState -p UnitFileState")
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def steps(rep):
    return {s["name"]: s for s in rep["steps"]}


@pytest.fixture(scope="module")
def pair(plab, tmp_path_factory):
    """A Debian host and an EL7-shaped one (CentOS 7 os-release, yum = dnf): the engine's OS
    packages come from stand-in RPMs in a mirror served on the lab bridge, through real dnf."""
    tmp = tmp_path_factory.mktemp("install")
    hosts, url = up_both_families(plab, 1, tmp)
    kh = known_hosts(hosts, tmp / "known_hosts")
    before = {h.name: (file_list(h), file_list(h, "/var/lib/berth")) for h in hosts}
    # one build for the module, of the committed engine: runtime/ edited meanwhile in the
    # shared working tree must neither look like an upgrade nor break these tests
    current = bundle.build(src=committed_tree(tmp / "committed") / "runtime")
    (tmp / current.filename).write_bytes(current.data)
    yield hosts, (kh, url, str(tmp / current.filename)), before
    plab.stop(hosts)  # free the machine for the tests after these


def host_args(hosts, ctx, *extra, engine_bundle=None):
    kh, url, current = ctx
    return [
        "--bundle",
        engine_bundle or current,
        *(f"root@{h.ip}" for h in hosts),
        "--user",
        "tester",
        "--mirror",
        url,
        "--no-gpgcheck",
        *extra,
        *ssh_args(hosts, kh),
    ]


def test_two_fresh_hosts_one_command(pair):
    hosts, kh, _ = pair
    rc, reps = provision_json("host", *host_args(hosts, kh, "--registry-mirror", MIRROR_A))
    assert rc == 0, json.dumps(reps, indent=1)[-3000:]
    el7 = steps(reps[f"root@{hosts[1].ip}"])
    # only what is not installed yet is fetched (the el7 flavour is Debian underneath: dpkg
    # already knows python3, iptables, util-linux and tar; iproute is only in the stand-in repo)
    assert "yum -y -q --releasever=7 install iproute" in " ".join(el7["engine packages"]["actions"])
    assert hosts[1].exec("rpm -q --qf '%{NAME}' iproute").stdout == "iproute"
    version = bundle.runtime_version()
    for h in hosts:
        rep = reps[f"root@{h.ip}"]
        st = steps(rep)
        for name in ("engine bundle", "berthd unit", "berthd service"):
            assert st[name]["status"] == "changed", st[name]
        assert st["engine verify"]["status"] == "ok"
        assert "container ran and exited 0" in " ".join(st["engine verify"]["notes"])
        assert "tester must log in again for the docker group to apply" in " ".join(
            st["docker group"]["notes"]
        )
        svc = service(h)
        assert svc["ActiveState"] == "active" and svc["UnitFileState"] == "enabled"
        assert h.exec("stat -c '%U:%G %a' /run/berth.sock").stdout.strip() == "root:docker 660"
        # the unprivileged user, through its own (new) login, without sudo
        out = h.ssh("id -nG; berth version", user="tester", timeout=60)
        assert "docker" in out.stdout.split("\n")[0].split()
        assert f"Version:           {version}" in out.stdout
        # every run exits 0 (h.ssh checks), prints its output and leaves nothing behind
        runs = [h.ssh(f"berth run --rm {PROBE} echo ok", user="tester", timeout=60).stdout for _ in range(3)]
        assert runs == ["ok\n"] * 3, runs
        assert h.exec("berth ps -aq").stdout.strip() == ""
        info = json.loads(h.ssh("berth info -f json", user="tester").stdout)
        assert info["Driver"].startswith("overlay")
        assert [m.rstrip("/") for m in info["RegistryConfig"]["Mirrors"]] == [MIRROR_A]


def test_restart_keeps_a_detached_container_running(pair):
    (h, _), _, _ = pair
    h.exec(f"berth run -d --name keeper {PROBE} sleep 1000")
    pid_before = service(h)["MainPID"]
    h.exec("systemctl restart berthd")
    h.exec("for i in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done")
    assert service(h)["MainPID"] != pid_before
    state = json.loads(h.exec("berth inspect keeper").stdout)[0]["State"]
    assert state["Running"] is True and state["Status"] == "running"
    assert "keeper" in h.exec("berth ps").stdout
    h.exec("berth rm -f keeper")


def test_rerun_changes_nothing_and_restarts_nothing(pair):
    hosts, kh, _ = pair
    svc_before = [service(h) for h in hosts]
    rc, reps = provision_json("host", *host_args(hosts, kh, "--registry-mirror", MIRROR_A))
    changed = {
        t: [(s["name"], s["actions"]) for s in r["steps"] if s["status"] != "ok"] for t, r in reps.items()
    }
    assert rc == 0 and not any(changed.values()), changed
    assert [service(h) for h in hosts] == svc_before
    # the engine processes have had their full proof now (this run's or an earlier one's): a run
    # that changes nothing proves them cheaply, by their API, without a container
    rc, reps = provision_json("host", *host_args(hosts, kh, "--registry-mirror", MIRROR_A))
    for h in hosts:
        notes = " ".join(steps(reps[f"root@{h.ip}"])["engine verify"]["notes"])
        assert rc == 0 and "is the process the last full proof" in notes, notes
    assert [service(h) for h in hosts] == svc_before


def test_mirror_change_restarts_once_and_broken_config_rolls_back(pair):
    (h, _), kh, _ = pair
    before = service(h)
    # --check: shows the daemon.json diff and the restart it would do, touches nothing
    old_json = h.exec("cat /etc/berth/daemon.json").stdout
    rc, reps = provision_json("host", "--check", *host_args([h], kh, "--registry-mirror", MIRROR_B))
    st = steps(reps[f"root@{h.ip}"])
    assert rc == 0 and st["berthd service"]["status"] == "would change", st
    assert f'+    "{MIRROR_B}"' in st["daemon.json"]["diffs"][0]
    assert st["berthd service"]["diffs"] == [
        "$ systemctl reset-failed berthd 2>/dev/null; systemctl restart berthd\n"
    ]
    assert h.exec("cat /etc/berth/daemon.json").stdout == old_json and service(h) == before

    rc, reps = provision_json("host", *host_args([h], kh, "--registry-mirror", MIRROR_B))
    assert rc == 0, reps
    st = steps(reps[f"root@{h.ip}"])
    assert st["daemon.json"]["status"] == "changed"
    assert st["berthd service"]["actions"] == ["restart berthd (daemon.json changed)"]
    after = service(h)
    assert after["MainPID"] != before["MainPID"] and after["ActiveState"] == "active"
    info = json.loads(h.exec("berth info -f json").stdout)
    assert [m.rstrip("/") for m in info["RegistryConfig"]["Mirrors"]] == [MIRROR_B]
    good = h.exec("cat /etc/berth/daemon.json").stdout

    # a key berthd would refuse is refused by provision itself (the engine's own daemon.json
    # parser), before any host is contacted: exit 2, nothing written, no restart
    bogus = host_args([h], kh, "--registry-mirror", MIRROR_B, "--daemon-opt", "log-level=bogus")
    p = provision("host", *bogus)
    assert p.returncode == 2 and "log-level" in p.stderr and "berthd would refuse it" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1
    assert h.exec("cat /etc/berth/daemon.json").stdout == good
    assert service(h) == after

    # valid to --validate but berthd cannot start with it (no such group): restart fails, the
    # previous file is put back and the engine restarted with it
    rc, reps = provision_json(
        "host", *host_args([h], kh, "--registry-mirror", MIRROR_B, "--daemon-opt", "group=nosuchgroup")
    )
    rep = reps[f"root@{h.ip}"]
    assert rc == 1 and steps(rep)["berthd service"]["status"] == "failed", rep
    assert "put back" in rep["error"] and "running again" in rep["error"]
    assert h.exec("cat /etc/berth/daemon.json").stdout == good
    final = service(h)
    assert final["ActiveState"] == "active" and final["MainPID"] != "0"
    assert h.exec("stat -c '%U:%G %a' /run/berth.sock").stdout.strip() == "root:docker 660"
    rc, reps = provision_json("host", *host_args([h], kh, "--registry-mirror", MIRROR_B))
    assert rc == 0 and reps[f"root@{h.ip}"]["changed"] == 0, reps[f"root@{h.ip}"]["steps"]
    # nothing changed, but the engine runs as a new process since its last proof: the full proof
    notes = " ".join(steps(reps[f"root@{h.ip}"])["engine verify"]["notes"])
    assert "container ran and exited 0" in notes, notes


def test_status_reports_the_engine(pair):
    hosts, kh, _ = pair
    out = provision("status", *(h.ip for h in hosts), "--json", *ssh_args(hosts, kh[0]))
    assert out.returncode == 0, out.stdout + out.stderr
    reps = {r["target"]: r for r in json.loads(out.stdout)}
    assert reps[hosts[0].ip]["mirrors"] == [MIRROR_B] and reps[hosts[1].ip]["mirrors"] == [MIRROR_A]
    for r in reps.values():
        assert (
            r["active"] == "active"
            and r["socket"] == "root:docker 660"
            and r["version"] == bundle.runtime_version()
        )


def test_purge_then_upgrade_in_place_keeps_data(pair, tmp_path):
    hosts, kh, before = pair
    h = hosts[1]
    p = provision("uninstall", h.ip, "--purge", *ssh_args(hosts, kh[0]))
    assert p.returncode == 0, p.stdout + p.stderr
    assert file_list(h, "/var/lib/berth") == before[h.name][1]  # data root emptied too
    assert h.exec("getent group docker", check=False).returncode == 2

    old = bundle.build(version="0.0.9", src=committed_tree(tmp_path / "committed") / "runtime")
    path = tmp_path / old.filename
    path.write_bytes(old.data)
    rc, reps = provision_json("host", *host_args([h], kh, engine_bundle=path))
    assert rc == 0, reps
    assert "Version:           0.0.9" in h.exec("berth version").stdout
    h.exec(
        f"berth tag {PROBE} kept:1 && berth volume create keptvol && "
        f"berth run -d --name survivor -v keptvol:/data {PROBE} sleep 1000"
    )
    # the upgrade as a sudo user (bundle over SFTP as tester, installed through sudo)
    pw = tmp_path / "pw"
    pw.write_text(h.tester_password + "\n")
    args = [f"tester@{h.ip}" if a == f"root@{h.ip}" else a for a in host_args([h], kh)]
    rc, reps = provision_json("host", *args, "--sudo-password-file", pw)
    assert rc == 0, reps
    st = steps(reps[f"tester@{h.ip}"])
    assert any("replacing 0.0.9" in a for a in st["engine bundle"]["actions"])
    assert st["berthd service"]["actions"] == ["restart berthd (engine upgraded)"]
    assert f"Version:           {bundle.runtime_version()}" in h.exec("berth version").stdout
    assert "kept" in h.exec("berth images").stdout and "keptvol" in h.exec("berth volume ls").stdout
    assert json.loads(h.exec("berth inspect survivor").stdout)[0]["State"]["Running"] is True
    assert h.exec("ls /usr/local/lib/berth").stdout.split().count("current") == 1


def test_uninstall_leaves_the_host_as_before(pair):
    hosts, kh, before = pair
    h = hosts[0]
    # what the engine adds to the host's network: the default bridge, a user network's bridge,
    # a published port's rules, the veth of a container that is still running at uninstall
    h.exec(f"berth network create unnet >/dev/null && berth run -d --name netted --network unnet "
           f"-p 8080:80 {PROBE} sleep 1000 >/dev/null && berth run --rm {PROBE} true")
    links = h.exec("ip -o link show").stdout
    assert "berth0" in links and " br-" in links and "veth" in links, links
    assert "BERTH-FORWARD" in h.exec("iptables-save").stdout
    cgroups = "ls -d /sys/fs/cgroup/berth /sys/fs/cgroup/*/berth 2>/dev/null"
    assert h.exec(cgroups, check=False).stdout.strip()  # berthd's parent cgroups
    p = provision("uninstall", h.ip, *ssh_args(hosts, kh[0]))
    assert p.returncode == 0 and "images, containers and volumes kept" in p.stdout, p.stdout + p.stderr
    assert "network: bridges removed: berth0 br-" in p.stdout, p.stdout
    links = h.exec("ip -o link show").stdout
    assert "berth0" not in links and " br-" not in links and "veth" not in links, links
    assert "BERTH" not in h.exec("iptables-save").stdout
    assert not h.exec(cgroups, check=False).stdout.strip()
    assert file_list(h) == before[h.name][0]
    assert h.exec("systemctl is-active berthd", check=False).stdout.strip() in ("inactive", "unknown")
    assert h.exec("getent group docker", check=False).returncode == 2
    assert h.exec("ls /var/lib/berth").stdout.strip()  # data kept without --purge
    p = provision("uninstall", h.ip, *ssh_args(hosts, kh[0]))  # again: nothing left to do, still fine
    assert p.returncode == 0
