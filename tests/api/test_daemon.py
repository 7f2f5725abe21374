"""berthd itself: the socket, config, signals, version negotiation and error replies."""

import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests.api.conftest import GROUP, ROOT, Berthd

OUTSIDER = 54321  # a uid/gid no account on this machine uses

pytestmark = pytest.mark.timeout(120)


def _connect_as(path, gid_groups):
    """errno of connecting to path from a child running as uid/gid OUTSIDER with the given
    supplementary groups (0 when the connection is accepted)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to the outsider, then try
        code = 255
        try:
            os.close(r)
            os.setgroups(gid_groups)
            os.setgid(OUTSIDER)
            os.setuid(OUTSIDER)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                code = 0
            except OSError as exc:
                code = exc.errno
            os.write(w, str(code).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 32)
    os.close(r)
    os.waitpid(pid, 0)
    return int(out or b"-1")


def test_socket_owner_mode_and_kernel_check(berthd):
    st = os.stat(berthd.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    gid = __import__("grp").getgrnam(GROUP).gr_gid
    assert (st.st_uid, st.st_gid) == (0, gid)
    assert _connect_as(berthd.sock, [gid]) == 0
    assert _connect_as(berthd.sock, []) == errno.EACCES


def test_ping_headers_get_and_head(berthd):
    for path in ("/_ping", "/v1.44/_ping", "/v1.24/_ping"):
        status, headers, body = berthd.api("GET", path)
        assert status == 200 and body == b"OK"
        assert headers["api-version"] == "1.44"
        assert headers["ostype"] == "linux"
        assert headers["docker-experimental"] == "false"
        assert "no-cache" in headers["cache-control"]
        assert headers["pragma"] == "no-cache"
    status, headers, body = berthd.api("HEAD", "/_ping")
    assert status == 200 and body == b"" and headers["api-version"] == "1.44"


@pytest.mark.parametrize("version,text", [
    ("1.12", "client version 1.12 is too old. Minimum supported API version is 1.24, "
             "please upgrade your client to a newer version"),
    ("1.99", "client version 1.99 is too new. Maximum supported API version is 1.44"),
])
def test_version_out_of_range(berthd, version, text):
    status, headers, body = berthd.api("GET", "/v%s/version" % version)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": text}


def test_version_and_unknown_route(berthd):
    for path in ("/version", "/v1.44/version", "/v1.30/version"):
        status, _, body = berthd.api("GET", path)
        doc = json.loads(body)
        assert status == 200 and doc["ApiVersion"] == "1.44" and doc["MinAPIVersion"] == "1.24"
        assert doc["Os"] == "linux"
    status, headers, body = berthd.api("GET", "/v1.44/no/such/route")
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["message"] == "page not found"


def test_bad_json_body_is_400(berthd):
    status, headers, body = berthd.api("POST", "/volumes/create", body=b"{not json",
                                       headers={"Content-Type": "application/json"})
    assert status == 400 and headers["content-type"] == "application/json"
    assert "invalid JSON" in json.loads(body)["message"]


def test_info_and_version_from_three_clients(berthd):
    info = json.loads(berthd.api("GET", "/info")[2])
    assert info["DockerRootDir"] == berthd.data_root
    assert info["OSType"] == "linux" and info["Driver"] == "overlay2"
    out = berthd.berth("version")
    assert out.returncode == 0 and "API version:      1.44" in out.stdout.decode()
    out = berthd.berth("info")
    assert out.returncode == 0 and ("Docker Root Dir: %s" % berthd.data_root) in out.stdout.decode()
    out = berthd.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == "1.44 linux"
    out = berthd.docker("info", "--format", "{{.DockerRootDir}}")
    assert out.returncode == 0 and out.stdout.decode().strip() == berthd.data_root
    client = berthd.client()
    try:
        assert client.version()["ApiVersion"] == "1.44"
        assert client.info()["DockerRootDir"] == berthd.data_root
        assert client.ping() is True
    finally:
        client.close()


def test_info_counts_containers_by_state(loaded):
    def counts():
        info = json.loads(loaded.api("GET", "/info")[2])
        return [info[k] for k in ("Containers", "ContainersRunning", "ContainersPaused",
                                  "ContainersStopped")]

    before = counts()
    names = ("count-created", "count-exited", "count-running", "count-paused")
    try:
        for name in names:
            cmd = ["true"] if name == "count-exited" else ["sleep", "60"]
            status, _, body = loaded.api("POST", "/containers/create?name=" + name, body={
                "Image": "busybox", "Cmd": cmd, "HostConfig": {"NetworkMode": "none"}})
            assert status == 201, body
        for name in names[1:]:
            assert loaded.api("POST", "/containers/%s/start" % name)[0] == 204
        assert loaded.api("POST", "/containers/count-exited/wait")[0] == 200
        assert loaded.api("POST", "/containers/count-paused/pause")[0] == 204
        assert [a - b for a, b in zip(counts(), before)] == [4, 1, 1, 2]
        listed = json.loads(loaded.api("GET", "/containers/json?all=1")[2])
        states = [c["State"] for c in listed]
        assert counts() == [len(states), states.count("running"), states.count("paused"),
                            len(states) - states.count("running") - states.count("paused")]
    finally:
        for name in names:
            loaded.api("DELETE", "/containers/%s?force=1" % name)
    assert counts() == before


def test_slow_client_does_not_block_others(berthd):
    """A connection that sent half a request, and many clients at once, are served in parallel."""
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(berthd.sock)
    stalled.sendall(b"POST /containers/create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    try:
        results = []

        def ping():
            results.append(berthd.api("GET", "/_ping")[0])

        threads = [threading.Thread(target=ping) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 20
    finally:
        stalled.close()


def _berthd(*args):
    return subprocess.run([sys.executable, "-m", "runtime.daemon.main"] + list(args), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def test_validate_good_and_bad_configs(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({
        "data-root": "/var/lib/berth", "hosts": ["unix:///run/berth.sock"], "group": "docker",
        "registry-mirrors": ["https://mirror.example:5000"], "insecure-registries": ["10.0.0.0/8"],
        "max-concurrent-downloads": 3, "log-level": "info", "debug": False,
        "exec-opts": ["native.cgroupdriver=cgroupfs"], "live-restore": True,
        "log-opts": {"max-size": "10m"}}))
    out = _berthd("--validate", "--config-file", str(good))
    assert out.returncode == 0 and out.stdout.decode().strip() == "configuration OK"

    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"debug": true, "bogus-key": 1}')
    out = _berthd("--validate", "--config-file", str(unknown))
    err = out.stderr.decode()
    assert out.returncode == 1 and str(unknown) in err and "bogus-key" in err

    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "debug": true,\n  "log-level": "info"\n  "hosts": []\n}\n')
    out = _berthd("--validate", "--config-file", str(broken))
    err = out.stderr.decode()
    assert out.returncode == 1 and str(broken) in err and "line 4 column 3" in err

    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"debug": "yes"}')
    out = _berthd("--validate", "--config-file", str(wrong))
    assert out.returncode == 1 and "debug" in out.stderr.decode()

    out = _berthd("--validate", "--config-file", str(tmp_path / "missing.json"))
    assert out.returncode == 1 and "missing.json" in out.stderr.decode()

    for keys, message in (({"log-driver": "syslog"}, "no log driver named 'syslog' is registered"),
                          ({"log-opts": {"max-bytes": "1m"}}, "unknown log opt 'max-bytes'"),
                          ({"log-driver": "local", "log-opts": {"max-file": "0"}}, "cannot be less than 1")):
        logs = tmp_path / "logs.json"
        logs.write_text(json.dumps(keys))
        out = _berthd("--validate", "--config-file", str(logs))
        err = out.stderr.decode().strip()
        assert out.returncode == 1 and message in err and len(err.splitlines()) == 1, err


def test_bad_config_changes_nothing(tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text('{"no-such-option": true}')
    sock = tmp_path / "s.sock"
    out = _berthd("--config-file", str(conf), "--data-root", str(tmp_path / "root"),
                  "-H", "unix://%s" % sock, "--pidfile", str(tmp_path / "pid"))
    assert out.returncode == 1 and "no-such-option" in out.stderr.decode()
    assert sorted(os.listdir(str(tmp_path))) == ["daemon.json"]
    conf.write_text("{}")
    out = _berthd("--config-file", str(conf), "--data-root", str(tmp_path / "root"),
                  "-H", "unix://%s" % sock, "--group", "no-such-group-berth")
    assert out.returncode == 1 and "no-such-group-berth" in out.stderr.decode()
    out = _berthd("--config-file", str(conf), "--data-root", str(tmp_path / "root"), "-H", "tcp://0.0.0.0:2375")
    assert out.returncode == 1 and "without TLS" in out.stderr.decode()  # (tests/api/test_tcp_tls.py)
    out = _berthd("--config-file", str(conf), "--data-root", str(tmp_path / "root"), "-H", "udp://0.0.0.0:2375")
    assert out.returncode == 1 and "unix://" in out.stderr.decode()
    assert sorted(os.listdir(str(tmp_path))) == ["daemon.json"]


def test_sighup_reloads_and_sigterm_cleans_up(tmp_path):
    d = Berthd(str(tmp_path), config={"registry-mirrors": []})
    d.start()
    try:
        # a second daemon on the same socket or pidfile is refused and changes nothing
        out = _berthd("--config-file", d.config_file, "--data-root", str(tmp_path / "root2"),
                      "-H", d.host, "--group", GROUP)
        assert out.returncode == 1 and "in use" in out.stderr.decode()
        with open(d.config_file, "w") as f:
            json.dump({"registry-mirrors": ["https://mirror.test:5000"], "debug": True}, f)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            info = json.loads(d.api("GET", "/info")[2])
            if info["RegistryConfig"]["Mirrors"] == ["https://mirror.test:5000"]:
                break
            time.sleep(0.05)
        assert info["RegistryConfig"]["Mirrors"] == ["https://mirror.test:5000"] and info["Debug"], d.log()
        with open(d.config_file, "w") as f:
            f.write("{broken")
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert d.proc.poll() is None and d.api("GET", "/_ping")[0] == 200
        assert d.kill(signal.SIGTERM) == 0
        assert not os.path.exists(d.sock) and not os.path.exists(d.pidfile)
        assert "reload refused" in d.log()
    finally:
        d.cleanup()
