"""Input and error edges that need no lab host: targets validated before any host is contacted,
daemon.json checked with the engine's own parser, one per-host runner for every command, and
the berthd --validate refusal rolling daemon.json back."""

import json

import pytest

from provision import daemonjson
from provision.apply import Job, on_host
from provision.engine_kind import BERTH, DOCKER
from provision.errors import InputError, StepError
from provision.options import Options
from provision.ssh import SSHOptions, Target, parse_target
from provision.steps.service import Control, EngineStart
from provision.transport import LocalTransport
from runtime.daemon import config as berth_config
from tests.provision.labutil import provision

# nothing listens on port 1 of loopback: connecting fails at once
DEAD = "127.0.0.1:1"


def test_parse_target_forms():
    assert parse_target("alice@db1:2222") == Target("alice", "db1", 2222)
    assert parse_target("db1") == Target(None, "db1", None)
    assert parse_target("[fd00::5]:2200") == Target(None, "fd00::5", 2200)
    assert parse_target("root@fd00::5") == Target("root", "fd00::5", None)  # bare IPv6: no port
    assert parse_target("a@b@host") == Target("a@b", "host", None)


@pytest.mark.parametrize(
    "target, why",
    [
        ("root@db1:ssh", "port 'ssh' is not a number"),
        ("db1:99999", "port '99999' is not a number"),
        ("@db1", "empty user"),
        ("root@", "no host name"),
        ("[fd00::5", "an IPv6 address with a port is written [addr]:port"),
        ("[fd00::5]x", "an IPv6 address with a port is written [addr]:port"),
        ("db 1", "'db 1' is not a host name or address"),
    ],
)
def test_bad_targets_exit_2_before_any_host_is_contacted(target, why):
    # the good target beside it would fail with "cannot reach": it is never tried
    for cmd in ("check", "host", "facts", "status", "uninstall") if target == "@db1" else ("host",):
        p = provision(cmd, DEAD, target, "--timeout", "1")
        assert p.returncode == 2, (cmd, p.stdout, p.stderr)
        assert f"bad target {target!r}: {why}" in p.stderr and p.stderr.count("\n") == 1, p.stderr
        assert p.stdout == "" and "cannot reach" not in p.stderr


def test_bad_jump_host_and_ssh_config_exit_2(tmp_path):
    p = provision("check", DEAD, "--jump", "gw:port")
    assert p.returncode == 2 and "bad --jump 'gw:port': port 'port'" in p.stderr, p.stderr
    p = provision("check", DEAD, "--ssh-config", tmp_path / "none")
    assert p.returncode == 2 and f"cannot read --ssh-config {tmp_path / 'none'}" in p.stderr, p.stderr


def test_every_command_runs_hosts_in_parallel_and_reports_each_error_alike():
    targets = [DEAD, "127.0.0.1:2"]
    p = provision("facts", *targets, "--timeout", "2")
    out = json.loads(p.stdout)
    assert p.returncode == 1 and list(out) == targets, p.stderr
    errors = [out[t]["error"] for t in targets]
    p = provision("status", *targets, "--json", "--timeout", "2")
    assert p.returncode == 1 and [r["target"] for r in json.loads(p.stdout)] == targets
    errors += [r["error"] for r in json.loads(p.stdout)]
    p = provision("uninstall", *targets, "--json", "--timeout", "2")
    assert p.returncode == 1 and [r["status"] for r in json.loads(p.stdout)] == ["failed"] * 2
    errors += [r["error"] for r in json.loads(p.stdout)]
    for i, e in enumerate(errors):
        assert e.startswith("cannot reach ") and f"@127.0.0.1:{1 + i % 2}: " in e, errors


def test_a_bug_in_per_host_work_is_one_line_for_that_host():
    job = Job(Options(), SSHOptions(), local=True)
    value, err = on_host("localhost", job, lambda t: t.run("echo hi").stdout)
    assert (value, err) == ("hi\n", None)
    value, err = on_host("localhost", job, lambda t: {}["missing"])
    assert value is None and err == "internal error: KeyError: 'missing'"


@pytest.mark.parametrize(
    "setting",
    ['dns=["10.0.0.2"]', "bip=10.99.0.1/24", "ipv6=true", "mtu=1400", "iptables=false", "no-such-key=1"],
)
def test_berth_daemon_json_accepts_exactly_what_berthd_accepts(setting):
    opts = Options(daemon_opts=[setting])
    key = setting.partition("=")[0]
    try:
        berth_config.parse(json.dumps(daemonjson.parse_setting(setting)), BERTH.config_file)
        berthd_ok = True
    except berth_config.ConfigError:
        berthd_ok = False
    if berthd_ok:
        opts.validate()
    else:
        with pytest.raises(InputError, match=f"{key}.*berthd would refuse it"):
            opts.validate()
    Options(engine="docker", daemon_opts=[setting] if key != "no-such-key" else []).validate()


def test_berth_daemon_json_refuses_what_berthd_cannot_start_with():
    for setting, msg in (
        ('exec-opts=["native.cgroupdriver=systemd"]', "systemd cgroup driver is not supported"),
        ("log-opts.max-file=3", "log-opts values must be strings"),
        ('hosts=["tcp://0.0.0.0:2375"]', "without TLS"),
        ('hosts=["udp://0.0.0.0:2375"]', "use unix:///path"),
    ):
        with pytest.raises(InputError, match=msg):
            Options(daemon_opts=[setting]).validate()
    opts = ['log-opts.max-size="10m"', 'log-opts.max-file="3"', 'exec-opts=["native.cgroupdriver=cgroupfs"]']
    Options(daemon_opts=opts).validate()


def test_a_daemon_json_the_engine_rejects_is_put_back_without_a_restart(tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text('{"debug": true}\n')
    previous = b'{"debug": false}\n'
    started = tmp_path / "started"
    ctl = Control("berthd", True, str(tmp_path / "s.sock"), "true", str(conf))
    start = EngineStart(
        ctl, True, "daemon.json changed", True, previous, validate_cmd="echo 'bad key: nope' >&2; exit 1"
    )
    ctl_start = ctl.start
    ctl.start = lambda restart: f"touch {started}; " + ctl_start(restart)  # would restart: must not run
    with LocalTransport() as t, pytest.raises(StepError, match="rejects the new .*bad key: nope.*put back"):
        start.apply(t)
    assert conf.read_bytes() == previous and not started.exists()
    assert DOCKER.validate_cmd(DOCKER.config_file) == ""  # dockerd has none: its restart is the check
