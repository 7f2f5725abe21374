"""Containers through the API with the three clients: run --rm, run -d + logs -f + stop + rm,
exec, named volumes, a TTY through a pty, inspect/ps, and the error paths."""

import json
import os
import pty
import select
import socket
import subprocess
import time

import docker
import pytest

from tests.api.conftest import DOCKER

LOOP = "trap 'exit 0' TERM; i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done"

pytestmark = pytest.mark.timeout(120)


def _all_names(berthd):
    listing = json.loads(berthd.api("GET", "/containers/json?all=1")[2])
    return {n.lstrip("/") for c in listing for n in c["Names"]}


def test_run_rm_output_and_exit_code(loaded):
    out = loaded.berth("run", "--rm", "--name", "b-rm", "busybox", "sh", "-c",
                       "echo hello; echo oops >&2; exit 3")
    assert (out.returncode, out.stdout) == (3, b"hello\n"), out.stderr
    # the create's warnings first (as docker run shows them), then the container's stderr
    assert [x for x in out.stderr.splitlines() if not x.startswith(b"WARNING: ")] == [b"oops"]
    out = loaded.docker("run", "--rm", "--name", "d-rm", "busybox", "sh", "-c",
                        "echo hi; echo err >&2; exit 4")
    assert (out.returncode, out.stdout) == (4, b"hi\n"), out.stderr
    assert out.stderr.endswith(b"err\n")  # after the engine's warning about the default network
    client = loaded.client()
    try:
        assert client.containers.run("busybox", ["sh", "-c", "echo py"], remove=True, name="p-rm") == b"py\n"
        with pytest.raises(docker.errors.ContainerError) as err:
            client.containers.run("busybox", ["sh", "-c", "exit 2"], remove=True)
        assert err.value.exit_status == 2
    finally:
        client.close()
    out = loaded.berth("run", "--rm", "busybox", "true")
    assert out.returncode == 0 and out.stdout == b""
    time.sleep(0.2)
    assert not {"b-rm", "d-rm", "p-rm"} & _all_names(loaded)


def _follow(argv, env, want, timeout=20):
    """Start a `logs -f` command line; return (process, output so far) once `want` lines arrived."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    got = b""
    deadline = time.time() + timeout
    while got.count(b"\n") < want and time.time() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            got += chunk
    return proc, got


def test_detached_logs_follow_stop_rm_berth(loaded):
    out = loaded.berth("run", "-d", "--name", "bweb", "busybox", "sh", "-c", LOOP)
    assert out.returncode == 0, out.stderr
    cid = out.stdout.decode().strip()
    assert len(cid) == 64
    env = dict(os.environ, BERTH_HOST=loaded.host)
    proc, got = _follow([os.path.join(os.path.dirname(__import__("sys").executable), "berth"),
                         "logs", "-f", "bweb"], env, 3)
    assert got.startswith(b"line0\nline1\nline2\n")
    out = loaded.berth("ps")
    header, rows = out.stdout.decode().splitlines()[0], out.stdout.decode().splitlines()[1:]
    assert header.startswith("CONTAINER ID   IMAGE")
    for col in ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"):
        assert col in header
    assert any(r.startswith(cid[:12]) and r.endswith("bweb") and "Up" in r for r in rows)
    out = loaded.berth("stop", "bweb")
    assert out.returncode == 0 and out.stdout.decode().strip() == "bweb"
    assert proc.wait(15) == 0
    inspect = json.loads(loaded.berth("inspect", "bweb").stdout)[0]
    assert inspect["State"]["Running"] is False and inspect["State"]["ExitCode"] == 0
    out = loaded.berth("rm", "bweb")
    assert out.returncode == 0 and "bweb" not in _all_names(loaded)


def test_detached_logs_follow_stop_rm_docker(loaded):
    out = loaded.docker("run", "-d", "--name", "dweb", "busybox", "sh", "-c", LOOP)
    assert out.returncode == 0, out.stderr
    env = dict(os.environ, DOCKER_CONFIG=os.path.join(loaded.base, "docker-config"))
    proc, got = _follow([DOCKER, "-H", loaded.host, "logs", "-f", "dweb"], env, 3)
    assert got.startswith(b"line0\nline1\nline2\n")
    out = loaded.docker("ps", "--format", "{{.Names}} {{.Status}}")
    assert any(line.startswith("dweb Up") for line in out.stdout.decode().splitlines())
    assert loaded.docker("inspect", "--format", "{{.State.Running}}", "dweb").stdout.strip() == b"true"
    out = loaded.docker("stop", "dweb")
    assert out.returncode == 0, out.stderr
    assert proc.wait(15) == 0
    out = loaded.docker("rm", "dweb")
    assert out.returncode == 0 and "dweb" not in _all_names(loaded)


def test_detached_logs_stop_rm_docker_py(loaded):
    client = loaded.client()
    try:
        c = client.containers.run("busybox", ["sh", "-c", LOOP], detach=True, name="pweb")
        lines = []
        for chunk in c.logs(stream=True, follow=True):
            lines.append(chunk)
            if b"".join(lines).count(b"\n") >= 3:
                break
        assert b"".join(lines).startswith(b"line0\n")
        c.reload()
        assert c.status == "running"
        c.stop(timeout=5)
        c.reload()
        assert c.status == "exited"
        c.remove()
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("pweb")
    finally:
        client.close()


def test_exec_with_each_client(loaded):
    out = loaded.berth("run", "-d", "--name", "ex", "busybox", "sh", "-c", LOOP)
    assert out.returncode == 0, out.stderr
    try:
        out = loaded.berth("exec", "ex", "sh", "-c", "echo in-$HOSTNAME-x; exit 5")
        assert out.returncode == 5 and out.stdout.startswith(b"in-")
        out = loaded.docker("exec", "ex", "cat", "/proc/1/cmdline")
        assert out.returncode == 0 and b"sh" in out.stdout
        out = loaded.docker("exec", "-i", "ex", "cat", input=b"through stdin\n")
        assert out.returncode == 0 and out.stdout == b"through stdin\n"
        client = loaded.client()
        try:
            code, output = client.containers.get("ex").exec_run(["echo", "py-exec"])
            assert (code, output) == (0, b"py-exec\n")
        finally:
            client.close()
    finally:
        loaded.berth("rm", "-f", "ex")


def test_named_volume_survives_rm_and_in_use(loaded):
    out = loaded.berth("run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert out.returncode == 0, out.stderr
    out = loaded.docker("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f")
    assert (out.returncode, out.stdout) == (0, b"kept\n"), out.stderr
    out = loaded.berth("run", "-d", "--name", "holder", "-v", "keep:/data", "busybox", "sleep", "30")
    assert out.returncode == 0, out.stderr
    try:
        out = loaded.berth("volume", "rm", "keep")
        assert out.returncode == 1 and "in use" in out.stderr.decode()
        status, headers, body = loaded.api("DELETE", "/volumes/keep")
        assert status == 409 and headers["content-type"] == "application/json"
    finally:
        loaded.berth("rm", "-f", "holder")
    assert loaded.berth("volume", "rm", "keep").returncode == 0


def _pty_session(argv, env, script, want, timeout=20):
    """Run argv on a new pty, type script, collect output until `want` appears and it exits."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out = b""
    sent = False
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
            if not sent and (b"#" in out or time.time() > deadline - timeout + 1.5):
                os.write(fd, script)
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert want in out, out
    return os.WEXITSTATUS(status), out


def test_interactive_tty_through_pty(loaded):
    berth = os.path.join(os.path.dirname(__import__("sys").executable), "berth")
    env = dict(os.environ, BERTH_HOST=loaded.host, TERM="xterm")
    code, out = _pty_session([berth, "run", "-it", "--rm", "busybox", "sh"], env,
                             b"echo $((6*7))x; tty; exit 7\r", b"42x")
    assert code == 7 and b"not a tty" not in out
    env = dict(env, DOCKER_CONFIG=os.path.join(loaded.base, "docker-config"))
    code, out = _pty_session([DOCKER, "-H", loaded.host, "run", "-it", "--rm", "busybox", "sh"], env,
                             b"echo $((7*7))y; exit 6\r", b"49y")
    assert code == 6


def test_wait_flushes_headers_before_start(loaded):
    cid = json.loads(loaded.api("POST", "/containers/create", body={"Image": "busybox", "Cmd": ["true"]},
                                headers={"Content-Type": "application/json"})[2])["Id"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(loaded.sock)
    s.sendall(b"POST /v1.44/containers/%s/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 0\r\n\r\n" % cid.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    assert loaded.api("POST", "/containers/%s/start" % cid)[0] == 204
    body = head.split(b"\r\n\r\n", 1)[1]
    while b'StatusCode' not in body or not body.endswith(b"0\r\n\r\n"):
        data = s.recv(4096)
        if not data:
            break
        body += data
    s.close()
    assert b'"StatusCode": 0' in body
    assert loaded.api("DELETE", "/containers/%s" % cid)[0] == 204


def test_lifecycle_verbs_and_inspect(loaded):
    assert loaded.berth("run", "-d", "--name", "life", "busybox", "sleep", "30").returncode == 0
    try:
        assert loaded.api("POST", "/containers/life/start")[0] == 304
        assert loaded.berth("pause", "life").returncode == 0
        assert json.loads(loaded.berth("inspect", "life").stdout)[0]["State"]["Paused"] is True
        assert loaded.docker("unpause", "life").returncode == 0
        out = loaded.docker("inspect", "--format", "{{.State.Status}} {{.Name}}", "life")
        assert out.stdout.decode().strip() == "running /life"
        assert loaded.berth("restart", "-t", "0", "life").returncode == 0
        assert loaded.berth("kill", "life").returncode == 0
        state = json.loads(loaded.api("GET", "/containers/life/json")[2])["State"]
        assert state["Running"] is False and state["ExitCode"] == 137
        assert loaded.api("POST", "/containers/life/stop")[0] == 304
    finally:
        loaded.berth("rm", "-f", "life")
    out = loaded.berth("run", "--name", "once", "busybox", "sh", "-c", "echo again; exit 2")
    assert (out.returncode, out.stdout) == (2, b"again\n")
    out = loaded.berth("start", "-a", "once")
    assert (out.returncode, out.stdout) == (2, b"again\n")
    assert loaded.berth("rm", "once").returncode == 0


def test_error_paths(loaded):
    status, headers, body = loaded.api("POST", "/containers/create", body={"Image": "nosuch:1"},
                                       headers={"Content-Type": "application/json"})
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["message"] == "No such image: nosuch:1"
    out = loaded.berth("run", "--rm", "127.0.0.1:1/nosuch:1", "true")
    assert out.returncode == 125 and "Unable to find image" in out.stderr.decode()
    out = loaded.docker("run", "--rm", "127.0.0.1:1/nosuch:1", "true")
    assert out.returncode == 125 and "127.0.0.1:1/nosuch" in out.stderr.decode()
    out = loaded.berth("run", "--name", "bad name!", "busybox", "true")
    assert out.returncode == 125 and "Error response from daemon" in out.stderr.decode()
    out = loaded.docker("run", "--name", "bad name!", "busybox", "true")
    assert out.returncode == 125
    out = loaded.berth("run", "--rm", "busybox", "no-such-command")
    assert out.returncode == 127, out.stderr
    assert loaded.berth("run", "-d", "--name", "busy", "busybox", "sleep", "30").returncode == 0
    try:
        out = loaded.berth("rm", "busy")
        assert out.returncode == 1 and "running" in out.stderr.decode()
        status, _, body = loaded.api("DELETE", "/containers/busy")
        assert status == 409
        out = loaded.docker("rm", "busy")
        assert out.returncode == 1
        client = loaded.client()
        try:
            with pytest.raises(docker.errors.APIError) as err:
                client.containers.get("busy").remove()
            assert err.value.status_code == 409
            with pytest.raises(docker.errors.NotFound):
                client.containers.get("never-was")
        finally:
            client.close()
    finally:
        loaded.berth("rm", "-f", "busy")
    out = loaded.berth("stop", "never-was")
    assert out.returncode == 1 and "never-was" in out.stderr.decode()


def test_commit_filters_and_log_options(loaded):
    out = loaded.berth("run", "--name", "maker", "-l", "role=maker", "busybox", "sh", "-c",
                       "echo made > /made; echo one; echo two")
    assert out.returncode == 0, out.stderr
    try:
        out = loaded.berth("commit", "-m", "with /made", "maker", "committed:1")
        assert out.returncode == 0 and out.stdout.decode().startswith("sha256:"), out.stderr
        out = loaded.berth("run", "--rm", "committed:1", "cat", "/made")
        assert (out.returncode, out.stdout) == (0, b"made\n")
        out = loaded.docker("commit", "maker", "committed:2")
        assert out.returncode == 0, out.stderr
        out = loaded.docker("ps", "-a", "--filter", "label=role=maker", "--format", "{{.Names}}")
        assert out.stdout.decode().split() == ["maker"]
        out = loaded.berth("ps", "-a", "-q", "-f", "name=maker")
        assert len(out.stdout.decode().split()) == 1
        out = loaded.berth("ps", "-q", "-f", "status=running", "-f", "name=maker")
        assert out.stdout == b""
        out = loaded.docker("logs", "--tail", "1", "maker")
        assert out.stdout == b"two\n"
        out = loaded.berth("logs", "-t", "maker")
        lines = out.stdout.decode().splitlines()
        assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"] and lines[0][4] == "-"
    finally:
        loaded.berth("rm", "-f", "maker")
