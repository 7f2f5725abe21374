"""The CLI's own pieces, without a daemon: flag parsing (and its argparse fallback), docker's
number formats, JSON, the container config `run` builds, exit codes for bad usage."""

import os
import subprocess
import sys

import pytest

from runtime.cli import fmt, jsonfast, opts
from runtime.cli.run import container_config, exit_code_for_start_error, parse_bytes, parser_run
from runtime.cli.main import main

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")


def _run_args(*argv):
    p = opts.Parser("berth run", add_help=False)
    p.add_argument("--help", action="help")
    parser_run(p)
    return p.parse_args(list(argv))


def test_run_flags_stop_at_the_image():
    a = _run_args("--rm", "-it", "-e", "A=1", "-eB=2", "--name=x", "-v", "v:/d", "busybox",
                  "sh", "-c", "ls -l", "--rm")
    assert a.rm and a.interactive and a.tty and a.name == "x"
    assert a.env == ["A=1", "B=2"] and a.volume == ["v:/d"]
    assert a.image == "busybox" and a.command == ["sh", "-c", "ls -l", "--rm"]
    a = _run_args("busybox")
    assert a.command == [] and not a.rm and a.env == []


def test_run_config_matches_docker():
    a = _run_args("--rm", "-i", "-m", "64m", "--cpus", "1.5", "--pids-limit", "10", "--network", "none",
                  "-w", "/tmp", "-u", "1000:1000", "--entrypoint", "", "-v", "/anon", "-v", "n:/n:ro",
                  "busybox", "true")
    c = container_config(a)
    host = c["HostConfig"]
    assert host == {"AutoRemove": True, "Binds": ["n:/n:ro"], "Memory": 64 << 20, "NanoCpus": 1500000000,
                    "PidsLimit": 10, "NetworkMode": "none"}
    assert c["Volumes"] == {"/anon": {}} and c["Entrypoint"] == [] and c["Cmd"] == ["true"]
    assert c["OpenStdin"] and c["AttachStdin"] and c["StdinOnce"] and not c["Tty"]
    assert (c["WorkingDir"], c["User"]) == ("/tmp", "1000:1000")


def test_run_security_and_device_flags(tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    a = _run_args("--privileged", "--security-opt", "seccomp=%s" % profile, "--security-opt",
                  "no-new-privileges", "--device", "/dev/fuse", "--device", "/dev/null:/dev/n:r",
                  "--device", "/dev/zero:rw", "--device-cgroup-rule", "c 7:* r", "busybox")
    host = container_config(a)["HostConfig"]
    assert host["Privileged"] is True
    assert host["SecurityOpt"] == ['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}', "no-new-privileges"]
    assert host["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "r"},
        {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero", "CgroupPermissions": "rw"}]
    assert host["DeviceCgroupRules"] == ["c 7:* r"]
    with pytest.raises(Exception) as e:
        container_config(_run_args("--security-opt", "seccomp=/nonexistent.json", "busybox"))
    assert "/nonexistent.json" in str(e.value)


def test_sizes_durations_and_exit_codes():
    assert [parse_bytes(x) for x in ("512", "1k", "64m", "1g", "2GiB", "1.5m")] == [
        512, 1024, 64 << 20, 1 << 30, 2 << 30, int(1.5 * (1 << 20))]
    assert [fmt.human_size(x) for x in (0, 999, 4260000, 2430000, 1e9)] == ["0B", "999B", "4.26MB", "2.43MB",
                                                                            "1GB"]
    assert [fmt.human_duration(x) for x in (0.2, 1, 59, 60, 150, 3600, 7200, 3 * 86400)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "2 minutes", "About an hour",
        "2 hours", "3 days"]
    assert fmt.ellipsis("sh -c while true; do echo", 20) == "sh -c while true; d\u2026"
    assert exit_code_for_start_error('exec: "x": executable file not found in $PATH') == 127
    assert exit_code_for_start_error("exec /bin/x: permission denied") == 126
    assert exit_code_for_start_error("no space left") == 125


def test_jsonfast_round_trip():
    doc = {"a": [1, -2.5, None, True, False, "\u00e9\"\n"], "b": {"c": {}}}
    assert jsonfast.loads(jsonfast.dumps(doc)) == doc
    assert jsonfast.loads(b' {"x": [1e3]}\n') == {"x": [1000.0]}
    with pytest.raises(ValueError):
        jsonfast.loads("{")
    with pytest.raises(ValueError):
        jsonfast.loads("[1] 2")


def test_usage_errors_exit_125(capsys):
    assert main(["--bogus"]) == 125
    assert main(["no-such-command"]) == 125
    with pytest.raises(SystemExit) as err:
        main(["ps", "--bogus"])
    assert err.value.code == 125
    with pytest.raises(SystemExit) as err:
        main(["run"])
    assert err.value.code == 125
    assert "berth" in capsys.readouterr().err


def test_unreachable_daemon(tmp_path):
    env = dict(os.environ, BERTH_HOST="unix://%s" % (tmp_path / "none.sock"))
    out = subprocess.run([BERTH, "ps"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert out.returncode == 1 and b"Is berthd running?" in out.stderr
    out = subprocess.run([BERTH, "run", "busybox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert out.returncode == 125
    out = subprocess.run([BERTH, "-H", "tcp://1.2.3.4:2375", "ps"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert out.returncode == 1 and b"unix://" in out.stderr
    out = subprocess.run([BERTH, "--help"], stdout=subprocess.PIPE)
    assert out.returncode == 0 and b"volume prune" in out.stdout


def test_run_network_flags_match_docker():
    a = _run_args("-p", "8080:80", "-p", "127.0.0.1::53/udp", "-P", "--expose", "90-91", "--network",
                  "appnet", "--network-alias", "web", "--ip", "10.1.0.5", "--add-host", "gw:host-gateway",
                  "--dns", "1.1.1.1", "--dns-search", "example.org", "--dns-opt", "ndots:2",
                  "--domainname", "example.org", "busybox", "true")
    c = container_config(a)
    assert c["HostConfig"] == {
        "AutoRemove": False, "Binds": None, "NetworkMode": "appnet", "PublishAllPorts": True,
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                         "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
        "ExtraHosts": ["gw:host-gateway"], "Dns": ["1.1.1.1"], "DnsSearch": ["example.org"],
        "DnsOptions": ["ndots:2"]}
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "90/tcp": {}, "91/tcp": {}}
    assert c["NetworkingConfig"] == {"EndpointsConfig": {"appnet": {
        "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}}
    assert c["Domainname"] == "example.org"


def test_bad_publish_spec_exits_125_naming_it(capsys):
    assert main(["run", "-p", "x:80", "busybox"]) == 125
    assert "invalid host port 'x' in -p x:80" in capsys.readouterr().err


def test_ps_ports_column():
    from runtime.cli.containers import ports_column
    assert ports_column([{"PrivatePort": 443, "Type": "tcp"},
                         {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                         {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"}]) == \
        "127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, 443/tcp"
