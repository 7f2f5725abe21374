"""Services that stay up on a real systemd host: berth provisioned on a nested lab host, then
what a reboot does to the containers (berthd stopped, every monitor and container process
killed, berthd started): those with `always` or `unless-stopped` run again, the others do not;
and a container killed while berthd is stopped comes back without it."""

import json

import pytest

from provision import bundle
from tests.provision.installutil import committed_tree
from tests.provision.labutil import build_apt_repo, known_hosts, provision_json, ssh_args

pytestmark = pytest.mark.lab

PROBE = "berth-probe:latest"
# pid of every container's monitor and PID 1, from the engine's own records
PIDS = ("python3 -c \"import glob, json, os; print(' '.join(str(p) for s in (json.load(open(f)) for f in "
        "glob.glob('/var/lib/berth/containers/*/state.json')) for p in (s.get('MonitorPid'), s.get('Pid')) "
        "if p and os.path.exists('/proc/%d' % p)))\"")


def _state(h, name):
    return json.loads(h.exec(f"berth inspect {name}").stdout)[0]["State"]


def _wait_for(h, cond, what):
    out = h.exec(f"for i in $(seq 200); do {cond} && exit 0; sleep 0.1; done; exit 1", check=False)
    assert out.returncode == 0, what


@pytest.fixture(scope="module")
def host(plab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("svc")
    (h,) = plab.up(1, nested=True)
    mirror = build_apt_repo(tmp / "mirror")
    url = plab.serve_dir(str(mirror))
    kh = known_hosts([h], tmp / "known_hosts")
    current = bundle.build(src=committed_tree(tmp / "committed") / "runtime")
    (tmp / current.filename).write_bytes(current.data)
    rc, reps = provision_json("host", "--bundle", str(tmp / current.filename), f"root@{h.ip}",
                              "--mirror", url, "--no-gpgcheck", *ssh_args([h], kh))
    assert rc == 0, json.dumps(reps, indent=1)[-3000:]
    yield h
    plab.stop([h])


def test_reboot_like_loss_of_every_process_brings_back_policy_containers(host):
    h = host
    for name, policy in (("svc-always", "always"), ("svc-unless", "unless-stopped"),
                         ("svc-no", "no"), ("svc-stopped", "unless-stopped")):
        h.exec(f"berth run -d --name {name} --restart {policy} {PROBE} sleep 1000")
    h.exec("berth stop -t 1 svc-stopped")
    unit = h.exec("systemctl show berthd -p After -p Wants").stdout
    assert "network-online.target" in unit and "local-fs.target" in unit

    h.exec("systemctl stop berthd")
    try:
        pids = h.exec(PIDS).stdout.split()
        assert len(pids) == 6, pids  # 3 running containers: a monitor and a PID 1 each
        h.exec("kill -9 " + " ".join(pids))
    finally:
        h.exec("systemctl start berthd")
    _wait_for(h, "berth version >/dev/null 2>&1", "berthd answers")
    _wait_for(h, "[ $(berth ps -q | wc -l) -eq 2 ]", "two containers running again")
    assert _state(h, "svc-always")["Status"] == "running"
    assert _state(h, "svc-unless")["Status"] == "running"
    assert _state(h, "svc-no")["Status"] == "exited"
    assert _state(h, "svc-stopped")["Status"] == "exited"
    h.exec("berth rm -f svc-always svc-unless svc-no svc-stopped")


def test_always_comes_back_while_berthd_is_stopped(host):
    h = host
    h.exec(f"berth run -d --name keep --restart always {PROBE} sleep 1000")
    pid = _state(h, "keep")["Pid"]
    h.exec("systemctl stop berthd")
    try:
        h.exec(f"kill -9 {pid}")
        # no berthd: the monitor restarts it; its own record says so
        _wait_for(h, "grep -q RestartCount /var/lib/berth/containers/*/state.json", "a restart recorded")
    finally:
        h.exec("systemctl start berthd")
    _wait_for(h, "berth version >/dev/null 2>&1", "berthd answers")
    info = json.loads(h.exec("berth inspect keep").stdout)[0]
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] != pid
    assert info["RestartCount"] == 1
    assert json.loads(h.exec("berth info -f json").stdout)["LiveRestoreEnabled"] is False
    h.exec("berth rm -f keep")
