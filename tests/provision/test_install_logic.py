"""Decisions of the engine install steps from facts (no host): what installs, what restarts,
what is recorded for uninstall. The lab tests run the same paths for real."""

import json

import pytest

from provision import bundle as bundlemod
from provision.distros import detect
from provision.errors import InputError
from provision.engine_kind import BERTH as BERTH_KIND
from provision.engine_kind import DOCKER, STATE_FILE
from provision.options import Options
from provision.status import parse_status
from provision.steps.daemon import ConfigChange
from provision.steps.docker_ce import plan_docker
from provision.steps.engine import load_bundle, plan_berth
from provision.steps.record import state_change
from provision.steps.service import EngineStart
from provision.transport import LocalTransport, Result
from provision.uninstall import restore_script

BERTH, BERTHD, BERTHD_UNIT = BERTH_KIND.client, BERTH_KIND.daemon, BERTH_KIND.unit

DEBIAN = detect(
    {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian 12", "VERSION_CODENAME": "bookworm"}
)
CENTOS7 = detect(
    {"ID": "centos", "VERSION_ID": "7", "PRETTY_NAME": "CentOS Linux 7 (Core)", "ID_LIKE": "rhel"}
)


def f(content, mode=0o644):
    return {"content": content, "mode": mode, "uid": 0, "gid": 0}


def installed_facts(opts, systemd=True, mirrors=()):
    """Facts of a host where this very engine build runs as wanted."""
    b = load_bundle(None)
    from provision.render import render

    unit = render("berthd.service.j2", {"berthd": BERTHD, "config_file": opts.daemon_json_path})
    daemon = (
        (json.dumps({"registry-mirrors": list(mirrors)}, indent=2) + "\n").encode() if mirrors else b"{}\n"
    )
    facts = {
        "init": {"pid1": "systemd", "booted": "yes"} if systemd else {"pid1": "sh"},
        "packages": {"python3", "iptables", "iproute2", "util-linux", "tar"},
        "group": {"gid": 999, "members": []},
        "users": {},
        "files": {opts.daemon_json_path: f(daemon)},
        "engine": {
            "marker": b.marker,
            "ActiveState": "active",
            "UnitFileState": "enabled",
            "LoadState": "loaded",
        },
        "engine_files": {
            BERTH: f(bundlemod.wrapper("berth"), 0o755),
            BERTHD: f(bundlemod.wrapper("berthd"), 0o755),
            BERTHD_UNIT: f(unit),
        },
    }
    if not systemd:
        facts["engine"] = {"marker": b.marker, "direct_pid": "42"}
    rec = state_change(facts, opts, [])
    facts["engine_files"][STATE_FILE] = f(rec.new)
    return facts


def daemon_step(opts, old, new):
    return ConfigChange(changed=True, previous=old)


def by_name(steps):
    return {s.name: s for s in steps}


def test_installed_engine_plans_nothing_but_the_check():
    opts = Options()
    steps = by_name(plan_berth(installed_facts(opts), DEBIAN, opts, ConfigChange()))
    assert [n for n, s in steps.items() if s.actions] == []
    assert steps["engine verify"].check is not None


def test_fresh_host_installs_everything_and_starts():
    opts = Options(users=["alice"])
    facts = {
        "init": {"pid1": "systemd", "booted": "yes"},
        "packages": {"python3"},
        "users": {"alice": ["alice"]},
    }
    steps = by_name(plan_berth(facts, CENTOS7, opts, ConfigChange()))
    assert (
        "yum -y -q --releasever=7 install iptables iproute util-linux tar"
        in steps["engine packages"].actions[0].cmd
    )
    kinds = [type(a).__name__ for a in steps["engine bundle"].actions]
    assert kinds[0] == "InstallBundle" and kinds.count("FileChange") == 3  # two wrappers + the record
    assert [a.describe() for a in steps["berthd unit"].actions][1] == "run: systemctl daemon-reload"
    svc = steps["berthd service"].actions
    assert svc[0].cmd.startswith("systemctl enable berthd")
    assert isinstance(svc[1], EngineStart) and not svc[1].restart
    rec = json.loads(steps["engine bundle"].actions[-1].new)
    assert rec["created_group"] is True and rec["added_users"] == ["alice"]
    assert opts.daemon_json_path in rec["created_files"]


def test_changed_daemon_json_restarts_once_with_rollback_data():
    opts = Options(registry_mirrors=["https://m2.example"])
    facts = installed_facts(opts, mirrors=["https://m1.example"])
    old = facts["files"][opts.daemon_json_path]["content"]
    steps = by_name(plan_berth(facts, DEBIAN, opts, daemon_step(opts, old, b"{}\n")))
    (start,) = steps["berthd service"].actions
    assert start.restart and start.config_changed and start.previous == old
    assert start.describe() == "restart berthd (daemon.json changed)"
    assert start.validate_cmd.startswith(f"{BERTHD} --validate --config-file /etc/berth/daemon.json")
    assert not start.other_reasons


def test_new_build_restarts_for_the_upgrade_only():
    opts = Options()
    facts = installed_facts(opts)
    facts["engine"]["marker"] = {"version": "0.0.9", "build": "0123456789ab"}
    steps = by_name(plan_berth(facts, DEBIAN, opts, ConfigChange()))
    assert "replacing 0.0.9" in steps["engine bundle"].actions[0].describe()
    (start,) = steps["berthd service"].actions
    assert (
        start.restart and not start.config_changed and start.describe() == "restart berthd (engine upgraded)"
    )


def test_without_systemd_no_unit_and_a_direct_daemon():
    opts = Options()
    facts = installed_facts(opts, systemd=False)
    facts["engine"].pop("direct_pid")
    steps = by_name(plan_berth(facts, DEBIAN, opts, ConfigChange()))
    assert "berthd unit" not in steps
    assert "systemd is not PID 1 here (PID 1 is sh)" in steps["berthd service"].notes[0]
    (start,) = steps["berthd service"].actions
    cmd = start.ctl.start(False)
    assert (
        "setsid /usr/local/bin/berthd --config-file /etc/berth/daemon.json --pidfile /run/berthd.pid" in cmd
    )


def test_docker_on_el_removes_old_packages_and_pins():
    opts = Options(engine="docker", docker_version="20.10.24")
    facts = {"init": {"pid1": "systemd", "booted": "yes"}, "packages": {"docker", "docker-common", "lvm2"}}
    steps = by_name(plan_docker(facts, CENTOS7, opts, ConfigChange(), refreshed=True))
    assert steps["old docker packages"].actions[0].cmd == "yum -y -q remove docker docker-common"
    assert "install yum-utils device-mapper-persistent-data" in steps["docker prerequisites"].actions[0].cmd
    record, pin, install = steps["docker-ce"].actions
    assert json.loads(record.new)["installed_packages"] == ["containerd.io", "docker-ce", "docker-ce-cli"]
    assert "yum list docker-ce --showduplicates" in pin.cmd
    assert install.cmd.endswith("install docker-ce-20.10.24 docker-ce-cli-20.10.24 containerd.io")
    with pytest.raises(InputError, match="bad --docker-version"):
        plan_docker(facts, CENTOS7, Options(engine="docker", docker_version="1;reboot"), ConfigChange(), True)


def test_docker_on_debian_is_the_distro_package():
    opts = Options(engine="docker")
    facts = {"init": {"pid1": "systemd", "booted": "yes"}, "packages": set()}
    steps = by_name(plan_docker(facts, DEBIAN, opts, ConfigChange(), refreshed=False))
    cmds = [a.cmd for a in steps["docker.io"].actions if hasattr(a, "cmd")]
    assert cmds[0].endswith("apt-get -q update") and "install --no-install-recommends docker.io" in cmds[1]
    assert DOCKER.socket({}) == "/var/run/docker.sock"


def test_state_record_never_claims_what_existed_before():
    opts = Options(users=["bob"])
    facts = {"group": None, "users": {"bob": ["bob"]}, "files": {"/etc/sysctl.d/99-berth.conf": None}}
    first = json.loads(state_change(facts, opts, ["docker.io"]).new)
    assert (
        first["created_group"]
        and first["added_users"] == ["bob"]
        and first["installed_packages"] == ["docker.io"]
    )
    # a later run sees the group (made by the first) and keeps what the first recorded
    later = {"group": {"gid": 5, "members": ["bob"]}, "users": {"bob": ["bob", "docker"]}, "files": {}}
    later["engine_files"] = {STATE_FILE: f(json.dumps(first).encode())}
    assert state_change(later, opts, []) is None or json.loads(state_change(later, opts, []).new) == first


def test_restore_and_status_parsing():
    assert restore_script("/etc/x.conf", True) == "rm -f /etc/x.conf /etc/x.conf.berth-orig /etc/x.conf.bak"
    assert "mv -f /etc/x.conf.berth-orig /etc/x.conf" in restore_script("/etc/x.conf", False)
    info = {"ServerVersion": "0.1.0", "RegistryConfig": {"Mirrors": ["https://m/"]}, "ContainersRunning": 2,
            "Driver": "overlay2"}  # fmt: skip
    st = parse_status(f"active=active\nenabled=enabled\nsocket=root:docker 660\ninfo={json.dumps(info)}\n")
    assert st == {"version": "0.1.0", "active": "active", "enabled": "enabled", "socket": "root:docker 660",
                  "mirrors": ["https://m/"], "running": 2, "driver": "overlay2"}  # fmt: skip


def test_install_script_extracts_compiles_and_switches_atomically():
    b = bundlemod.build(version="1.2.3")
    script = bundlemod.install_script(b, "/tmp/.berth-bundle-x")
    assert (
        f"/usr/bin/python3 -m zipfile -e /usr/local/lib/berth/berth-1.2.3.pyz {b.install_dir}.tmp" in script
    )
    assert f"mv {b.install_dir}.tmp {b.install_dir}" in script
    assert "mv -T /usr/local/lib/berth/.current.tmp /usr/local/lib/berth/current" in script
    w = bundlemod.wrapper("berth").decode()
    assert w.startswith("#!/usr/bin/python3 -IS\n")
    assert 'sys.path.insert(0, "/usr/local/lib/berth/current")' in w and w.endswith("cli()\n")


def test_check_mode_of_a_fresh_host_describes_every_engine_action():
    """`provision host --check`: every planned action renders its diff/command without a host."""
    from provision.plan import build_plan

    opts = Options(registry_mirrors=["https://m.example"], users=["alice"])
    facts = {
        "init": {"pid1": "systemd", "booted": "yes"},
        "packages": set(),
        "users": {"alice": ["alice"]},
        "files": {},
        "sysctl": {},
    }
    plans = build_plan(facts, DEBIAN, opts)
    text = "".join(a.diff() for p in plans for a in p.actions)
    assert "$ upload berth-" in text and "+++ b/etc/systemd/system/berthd.service" in text
    assert "$ systemctl enable berthd 2>&1" in text and "systemctl start berthd\n" in text
    assert [p.name for p in plans][-5:] == [
        "engine packages", "engine bundle", "berthd unit", "berthd service", "engine verify",
    ]  # fmt: skip
    assert [p.name for p in build_plan(facts, DEBIAN, Options(install_engine=False))][-1] == "docker group"


def test_a_new_install_record_alone_restarts_nothing():
    opts = Options()
    facts = installed_facts(opts)
    opts2 = Options(users=["carol"])
    facts["users"] = {"carol": ["carol"]}  # carol is added to the group: the record changes
    steps = by_name(plan_berth(facts, DEBIAN, opts2, ConfigChange()))
    assert [type(a).__name__ for a in steps["engine bundle"].actions] == ["FileChange"]
    assert steps["berthd service"].actions == []


def test_a_restart_left_pending_by_an_interrupted_run_is_done_by_the_next():
    """A run killed between writing daemon.json (or the engine) and restarting the engine: the
    files already match, but the marker it left under /run still gets the restart."""
    from provision.plan import build_plan
    from provision.steps.pending import MarkPending, plain_reasons, reason

    opts = Options(registry_mirrors=["https://m.example"])
    facts = installed_facts(opts, mirrors=["https://m.example"])
    facts["sysctl"] = {}
    steps = by_name(plan_berth(facts, DEBIAN, opts, ConfigChange()))
    assert steps["berthd service"].actions == []
    facts["engine"]["pending"] = "daemon.json changed"
    steps = by_name(plan_berth(facts, DEBIAN, opts, ConfigChange()))
    (start,) = steps["berthd service"].actions
    assert isinstance(start, EngineStart) and start.restart
    assert start.describe() == (
        "restart berthd (restart left pending by an interrupted run (daemon.json changed))"
    )
    # the run that restarts notes it as pending before its first change, whichever step that is
    facts["engine"].pop("pending")
    opts2 = Options(registry_mirrors=["https://n.example"])
    plans = build_plan(facts, DEBIAN, opts2)
    first = next(p for p in plans if p.actions)
    assert isinstance(first.actions[0], MarkPending), first
    assert first.actions[0].why == "daemon.json changed"
    assert sum(isinstance(a, MarkPending) for p in plans for a in p.actions) == 1
    # no restart planned: no marker
    plans = build_plan(facts, DEBIAN, opts)
    assert not any(isinstance(a, MarkPending) for p in plans for a in p.actions)
    # interrupted again and again: the marker keeps the plain reasons, each once
    facts["engine"]["pending"] = "engine upgraded, daemon.json changed"
    plans = build_plan(facts, DEBIAN, opts2)
    mark = next(a for p in plans for a in p.actions if isinstance(a, MarkPending))
    assert mark.why == "daemon.json changed, restart left pending by an interrupted run " \
                       "(engine upgraded, daemon.json changed)"
    assert plain_reasons(mark.why) == "daemon.json changed, engine upgraded"
    facts["engine"]["pending"] = plain_reasons(mark.why)
    assert reason(facts["engine"]) == \
        "restart left pending by an interrupted run (daemon.json changed, engine upgraded)"


def converged(facts, opts):
    """``facts`` of the host after the plan's files are written and its live values set."""
    from provision.options import MODULES, SYSCTLS
    from provision.plan import build_plan
    from provision.steps.base import FileChange

    facts["modules"] = {m: "builtin" for m in MODULES}
    facts["sysctl"] = dict(SYSCTLS)
    for p in build_plan(facts, DEBIAN, opts):
        for a in p.actions:
            if isinstance(a, FileChange):
                facts["files"][a.path] = f(a.new, a.mode)
    return facts


class Answers(LocalTransport):
    """A transport that runs nothing: each command gets the exit code ``rc(command)``."""

    def __init__(self, rc):
        super().__init__()
        self.rc, self.ran = rc, []

    def _exec(self, command, stdin, timeout):
        self.ran.append(command)
        return Result(command, self.rc(command), "", "")


def test_a_run_that_changes_nothing_proves_the_same_engine_process_cheaply():
    """The full proof (a container run) records the engine process it passed on; a run with
    nothing to change on that very process only asks the API (the lab tests run both)."""
    from provision.plan import build_plan
    from provision.steps.probe import make_quick_check

    opts = Options()
    since = "Thu 2026-12-03 03:00:00 UTC"
    facts = converged(installed_facts(opts), opts)
    facts["engine"].update(MainPID="4242", ActiveEnterTimestamp=since)
    facts["engine_sockets"] = {"/run/berth.sock": "root docker 660"}
    plans = by_name(build_plan(facts, DEBIAN, opts))
    assert [n for n, p in plans.items() if p.actions] == []
    assert plans["engine verify"].quick is None  # no full proof recorded: the full one runs
    facts["engine_proof"] = {"MainPID": "4242", "ActiveEnterTimestamp": since}
    verify = by_name(build_plan(facts, DEBIAN, opts))["engine verify"]
    assert verify.quick is not None and verify.check is verify.quick
    # another engine process (a restart, a reboot), a socket not as wanted, or any change: full
    for key, value in [("MainPID", "4243"), ("ActiveEnterTimestamp", "Thu 2026-12-03 03:05:00 UTC")]:
        other = dict(facts, engine=dict(facts["engine"], **{key: value}))
        assert by_name(build_plan(other, DEBIAN, opts))["engine verify"].quick is None, key
    other = dict(facts, engine_sockets={"/run/berth.sock": "root root 660"})
    assert by_name(build_plan(other, DEBIAN, opts))["engine verify"].quick is None
    plans = build_plan(dict(facts, users={"carol": ["carol"]}), DEBIAN, Options(users=["carol"]))
    verify = by_name(plans)["engine verify"]
    assert any(p.actions for p in plans) and verify.check is not verify.quick
    # direct mode (no systemd): the daemon's pid
    direct = dict(facts, engine={"marker": facts["engine"]["marker"], "direct_pid": "77"})
    direct["engine_proof"] = {"direct_pid": "77"}
    assert make_quick_check(BERTH_KIND, "/run/berth.sock", "docker", direct, None) is not None
    direct["engine_proof"] = {"direct_pid": "78"}
    assert make_quick_check(BERTH_KIND, "/run/berth.sock", "docker", direct, None) is None

    # the cheap proof asks the API; one that does not answer gets the full proof
    quick = make_quick_check(BERTH_KIND, "/run/berth.sock", "docker", facts, lambda t: ["full proof"])
    t = Answers(lambda cmd: 0)
    (note,) = quick(t)
    assert "berthd (PID 4242) is the process the last full proof" in note, note
    assert t.ran[-1].endswith(f"{BERTH} -H unix:///run/berth.sock version >/dev/null 2>&1"), t.ran
    assert quick(Answers(lambda cmd: 1)) == ["full proof"]


def test_selinux_on_el_installs_container_selinux_and_turns_labels_on():
    """An EL host running SELinux: the container-selinux policy installed and daemon.json
    selinux-enabled (berthd labels containers container_t); a second run changes nothing; a
    daemon.json that says selinux-enabled itself is left as it is; without SELinux, neither."""
    from provision.plan import build_plan

    opts = Options()
    el_tools = {"python3", "iptables", "iproute", "util-linux", "tar"}
    facts = installed_facts(opts)
    facts.update(packages=set(el_tools), selinux={"enforce": "1", "config": "enforcing"}, sysctl={})
    plans = by_name(build_plan(facts, CENTOS7, opts))
    text = "".join(a.diff() for a in plans["packages"].actions)
    assert "install container-selinux" in text, text
    daemon = "".join(a.diff() for a in plans["daemon.json"].actions)
    assert '+  "selinux-enabled": true' in daemon, daemon
    facts["packages"].add("container-selinux")
    facts["files"][opts.daemon_json_path] = f(b'{\n  "selinux-enabled": true\n}\n')
    plans = build_plan(facts, CENTOS7, opts)
    assert not any(p.actions for p in plans if p.name in ("packages", "daemon.json"))
    facts["files"][opts.daemon_json_path] = f(b'{"selinux-enabled": false}\n')  # the admin's choice
    assert not by_name(build_plan(facts, CENTOS7, opts))["daemon.json"].actions
    facts.update(packages=set(el_tools), selinux={"config": "disabled"})
    facts["files"][opts.daemon_json_path] = f(b"{}\n")
    plans = by_name(build_plan(facts, CENTOS7, opts))
    assert not plans["packages"].actions and not plans["daemon.json"].actions


def test_selinux_check_names_the_missing_policy():
    from provision.checks import WARN, check_selinux

    enforcing = {"enforce": "1", "config": "enforcing"}
    c = check_selinux(enforcing, {"tar"})
    assert c.status == WARN and "without the container-selinux policy" in c.detail
    assert "provision host installs it" in c.fix
    c = check_selinux(enforcing, {"container-selinux"})
    assert c.status != WARN and "container_t" in c.detail
    assert check_selinux({"enforce": "0"}, set()).status != WARN
    assert check_selinux({"config": "disabled"}, set()).detail == "SELinux disabled"
