"""Security options through the docker CLI and docker-py against berthd: --security-opt
seccomp=FILE (the CLI sends the file's content), unconfined, no-new-privileges, --privileged,
refusals, and the daemon.json keys seccomp-profile and no-new-privileges with `docker info`."""

import json

import pytest

from tests.api.conftest import Berthd

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"


def test_docker_cli_security_opts(loaded, tmp_path):
    r = loaded.docker("run", "--rm", "busybox", "sh", "-c", STATUS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"NoNewPrivs:", b"0", b"Seccomp:", b"2"]
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    r = loaded.docker("run", "--rm", "--security-opt", "seccomp=%s" % profile,
                      "--security-opt", "no-new-privileges", "busybox", "sh", "-c", STATUS + "; mkdir /x")
    assert r.stdout.split()[:4] == [b"NoNewPrivs:", b"1", b"Seccomp:", b"2"], r.stderr
    assert b"Operation not permitted" in r.stderr
    for opt in (["--security-opt", "seccomp=unconfined"], ["--privileged"]):
        r = loaded.docker("run", "--rm", *opt, "busybox", "grep", "Seccomp:", "/proc/self/status")
        assert r.stdout.split() == [b"Seccomp:", b"0"], (opt, r.stderr)
    r = loaded.docker("create", "--security-opt", "apparmor=docker-default", "busybox")
    assert r.returncode != 0 and b"AppArmor" in r.stderr
    status, _, body = loaded.api("POST", "/containers/create", body=json.dumps({
        "Image": "busybox", "HostConfig": {"UsernsMode": "private"}}).encode(),
        headers={"Content-Type": "application/json"})
    assert status == 400 and b"UsernsMode 'private' is not supported" in body


def test_docker_py_security_opt_and_privileged(loaded):
    client = loaded.client()
    try:
        out = client.containers.run("busybox", ["sh", "-c", STATUS], remove=True,
                                    security_opt=["no-new-privileges:true"])
        assert b"NoNewPrivs:\t1" in out and b"Seccomp:\t2" in out
        c = client.containers.create("busybox", "true", privileged=True, security_opt=["label=disable"])
        try:
            assert c.attrs["HostConfig"]["Privileged"] is True
            assert c.attrs["HostConfig"]["SecurityOpt"] == ["label=disable"]
        finally:
            c.remove(force=True)
    finally:
        client.close()


@pytest.fixture
def strict_daemon(tmp_path, busybox_tar):
    d = Berthd(str(tmp_path / "d"), config={"no-new-privileges": True, "seccomp-profile": "unconfined"})
    d.start()
    try:
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read(),
                         headers={"Content-Type": "application/x-tar"})[0] == 200
        yield d
    finally:
        d.cleanup()


def test_daemon_json_keys(strict_daemon):
    info = json.loads(strict_daemon.api("GET", "/info")[2])
    assert info["SecurityOptions"] == ["name=seccomp,profile=unconfined", "name=no-new-privileges"]
    r = strict_daemon.docker("run", "--rm", "busybox", "sh", "-c", STATUS)
    assert r.stdout.split() == [b"NoNewPrivs:", b"1", b"Seccomp:", b"0"], r.stderr
    r = strict_daemon.docker("run", "--rm", "--security-opt", "no-new-privileges=false",
                             "--security-opt", "seccomp=builtin", "busybox", "sh", "-c", STATUS)
    assert r.stdout.split() == [b"NoNewPrivs:", b"0", b"Seccomp:", b"2"], r.stderr


def test_info_default_and_bad_profile_file_stops_the_start(berthd, tmp_path):
    info = json.loads(berthd.api("GET", "/info")[2])
    assert info["SecurityOptions"] == ["name=seccomp,profile=builtin"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "X"}]}')
    d = Berthd(str(tmp_path / "d"), config={"seccomp-profile": str(bad)})
    try:
        with pytest.raises(RuntimeError) as e:
            d.start(timeout=10)
        assert "seccomp-profile" in str(e.value) and "'X' is not supported" in str(e.value)
    finally:
        d.cleanup()


def test_docker_py_low_level_host_config(loaded):
    """What docker-py's api_container_test does with these fields (its device_cgroup_rules and
    privileged cases), plus cap_add, devices, security_opt and userns_mode=host."""
    api = loaded.client().api
    made = []
    try:
        rule = "c 7:128 rwm"
        c = api.create_container("busybox", "true", host_config=api.create_host_config(
            device_cgroup_rules=[rule]))
        made.append(c["Id"])
        assert api.inspect_container(c)["HostConfig"]["DeviceCgroupRules"] == [rule]
        c = api.create_container("busybox", "true", host_config=api.create_host_config(
            privileged=True, network_mode="none"))
        made.append(c["Id"])
        api.start(c)
        assert api.wait(c)["StatusCode"] == 0
        assert api.inspect_container(c)["HostConfig"]["Privileged"] is True
        hc = api.create_host_config(cap_add=["SYS_ADMIN"], devices=["/dev/null:/dev/xnull:rwm"],
                                    security_opt=["no-new-privileges"], userns_mode="host")
        c = api.create_container("busybox", ["sh", "-c", "test -c /dev/xnull && " + STATUS], host_config=hc)
        made.append(c["Id"])
        api.start(c)
        assert api.wait(c)["StatusCode"] == 0
        out = api.logs(c)
        assert b"NoNewPrivs:\t1" in out and b"Seccomp:\t2" in out
        info = api.inspect_container(c)["HostConfig"]
        assert info["CapAdd"] == ["SYS_ADMIN"] and info["UsernsMode"] == "host"
        assert info["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull",
                                    "CgroupPermissions": "rwm"}]
    finally:
        for cid in made:
            api.remove_container(cid, force=True)
        api.close()


def test_berth_cli_security_flags(loaded, tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    r = loaded.berth("run", "--rm", "--security-opt", "seccomp=%s" % profile, "--security-opt",
                     "no-new-privileges", "--device", "/dev/null:/dev/xnull:r", "busybox", "sh", "-c",
                     STATUS + "; test -c /dev/xnull && mkdir /x")
    assert r.stdout.split() == [b"NoNewPrivs:", b"1", b"Seccomp:", b"2"], r.stderr
    assert r.returncode == 1 and b"Operation not permitted" in r.stderr
    r = loaded.berth("run", "--rm", "--privileged", "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert r.stdout.split() == [b"Seccomp:", b"0"], r.stderr
    r = loaded.berth("run", "--rm", "--security-opt", "apparmor=x", "busybox", "true")
    assert r.returncode == 125 and b"AppArmor" in r.stderr, r.stderr
