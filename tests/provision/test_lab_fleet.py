"""A fleet from an Ansible inventory on lab hosts: per-group and per-host variables reach the
right hosts, --limit leaves the excluded host untouched, rolling batches, one log per host,
the JSON report, and a rollout stopped by --max-fail-percentage with the rest skipped."""

import json

import pytest

from tests.provision.labutil import build_apt_repo, known_hosts, provision

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fleet(plab, tmp_path_factory):
    hosts = plab.up(4)
    tmp = tmp_path_factory.mktemp("fleet")
    mirror = plab.serve_dir(str(build_apt_repo(tmp / "mirror")))
    kh = known_hosts(hosts, tmp / "known_hosts")
    return hosts, kh, mirror, tmp


def write_inventory(tmp, hosts, mirror):
    """web01-web03 and db01 under prod, by inventory name, with the lab addresses as ansible_host."""
    inv = tmp / "inventory"
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    (inv / "host_vars").mkdir(exist_ok=True)
    lines = ["[web]"]
    lines += [f"web0{i + 1} ansible_host={h.ip}" for i, h in enumerate(hosts[:3])]
    lines += ["", "[db]", f"db01 ansible_host={hosts[3].ip} berth_gid=2400"]
    lines += ["", "[prod:children]", "web", "db", ""]
    (inv / "hosts").write_text("\n".join(lines))
    (inv / "group_vars" / "prod.yml").write_text(
        f"ansible_user: root\nansible_ssh_private_key_file: {hosts[0].key}\n"
        f"berth_mirror: {mirror}\nberth_gpgcheck: false\nberth_install_engine: false\n"
    )
    (inv / "group_vars" / "web.yml").write_text(
        "berth_gid: 2375\nberth_registry_mirrors: [https://web-mirror.example.com]\n"
    )
    (inv / "host_vars" / "web02.yml").write_text("berth_users: [tester]\nberth_daemon_json: {debug: true}\n")
    return inv


def test_inventory_limit_serial_logs_and_report(fleet):
    hosts, kh, mirror, tmp = fleet
    inv = write_inventory(tmp, hosts, mirror)
    logs, report = tmp / "logs", tmp / "report.json"
    p = provision(
        "host", "--inventory", inv, "--limit", "prod:!web03", "--serial", "1,50%",
        "--log-dir", logs, "--report", report, "--known-hosts", kh, "--timeout", "5",
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(report.read_text())
    reps = {r["target"]: r for r in data["hosts"]}
    assert list(reps) == ["web01", "web02", "db01"] and data["summary"]["changed"] == 3, data["summary"]
    for rep in reps.values():
        assert rep["status"] == "changed" and rep["failed"] == 0, rep
        steps = {s["name"]: s for s in rep["steps"]}
        assert steps["sysctls"]["status"] == "changed" and steps["sysctls"]["seconds"] > 0
        assert rep["verify"] is None  # --no-install (berth_install_engine: false): no engine to prove
    web01, web02, web03, db01 = hosts
    assert web01.ssh("getent group docker").stdout.strip() == "docker:x:2375:"
    assert web02.ssh("getent group docker").stdout.strip() == "docker:x:2375:tester"
    assert db01.ssh("getent group docker").stdout.strip() == "docker:x:2400:"
    assert json.loads(web02.ssh("cat /etc/berth/daemon.json").stdout) == {
        "registry-mirrors": ["https://web-mirror.example.com"],
        "debug": True,
    }
    assert json.loads(db01.ssh("cat /etc/berth/daemon.json 2>/dev/null || echo '{}'").stdout) == {}
    assert f"{mirror}/debian bookworm" in db01.ssh("cat /etc/apt/sources.list").stdout
    # --limit: web03 is never contacted
    assert web03.ssh("ls /etc/sysctl.d/99-berth.conf /etc/berth 2>&1 || true").stdout.count("No such") == 2
    assert sorted(f.name for f in logs.iterdir()) == ["db01.log", "web01.log", "web02.log"]
    log = (logs / "web02.log").read_text()
    assert log.startswith("# provision host web02")
    assert "$ write /etc/sysctl.d/99-berth.conf (" in log and "[exit 0," in log
    assert "== step sysctls: changed" in log and "+++ b/etc/sysctl.d/99-berth.conf" in log
    assert "+net.ipv4.ip_forward = 1" in log and "apt-get" in log and "# result: changed" in log
    assert "base64 -d" not in log  # file contents are summarised, not logged

    # rerun: nothing changes, the report says so
    p = provision(
        "host", "--inventory", inv, "--limit", "prod:!web03", "--report", report,
        "--known-hosts", kh, "--timeout", "5",
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert [r["changed"] for r in json.loads(report.read_text())["hosts"]] == [0, 0, 0]


def test_max_fail_percentage_stops_the_rollout_and_reports_the_rest(fleet):
    hosts, kh, mirror, tmp = fleet
    inv = tmp / "broken.yml"
    inv.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": hosts[0].key},
                    "hosts": {
                        "a": {"ansible_host": hosts[0].ip},
                        "b": {"ansible_host": hosts[1].ip, "ansible_port": 1},  # refused
                        "c": {"ansible_host": hosts[2].ip},
                        "d": {"ansible_host": hosts[3].ip},
                    },
                }
            }
        )
    )
    report = tmp / "broken-report.json"
    p = provision(
        "host", "--check", "--no-install", "--mirror", mirror, "--no-gpgcheck", "--inventory", inv,
        "--serial", "2", "--max-fail-percentage", "30", "--report", report, "--known-hosts", kh,
        "--timeout", "5",
    )  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    reps = {r["target"]: r for r in json.loads(report.read_text())["hosts"]}
    assert reps["a"]["status"] in ("ok", "would change") and reps["a"]["failed"] == 0, reps["a"]
    assert [reps[t]["status"] for t in "bcd"] == ["failed", "skipped", "skipped"], reps
    assert "refused" in reps["b"]["error"] and "--max-fail-percentage 30" in reps["c"]["error"]
    assert "skipped" in p.stdout


def test_bad_inventory_input_exits_2_before_any_host(fleet, tmp_path):
    hosts, kh, _, _ = fleet
    inv = tmp_path / "hosts"
    inv.write_text(f"[web]\nw1 ansible_host={hosts[0].ip} berth_gid=many\n")
    p = provision("host", "--inventory", inv, "--known-hosts", kh)
    assert p.returncode == 2 and "inventory host w1: berth_gid must be int, not 'many'" in p.stderr, p.stderr
    p = provision("host", "--inventory", inv, "--limit", "web:!w2", "--known-hosts", kh)
    assert p.returncode == 2 and "'w2' matches no group or host" in p.stderr
    p = provision("host", hosts[0].ip, "--inventory", inv)
    assert p.returncode == 2 and "not several" in p.stderr
    p = provision("host", "--inventory", inv, "--serial", "0", "--known-hosts", kh)
    assert p.returncode == 2 and "--serial '0'" in p.stderr
    p = provision("host", "--inventory", inv, "--report", tmp_path / "no/such/dir/r.json")
    assert p.returncode == 2 and "cannot write --report" in p.stderr
