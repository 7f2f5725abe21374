"""`docker attach` of a -it container detaches on ctrl-p ctrl-q, on --detach-keys and on the
client's config.json detachKeys, and the container keeps running (a real pty each time)."""

import json
import os
import pty
import select
import sys
import time

import pytest

from tests.api.conftest import DOCKER

pytestmark = pytest.mark.timeout(120)


def _attach(argv, env, steps, timeout=20):
    """Run argv on a pty; steps: [(bytes to wait for, or None: 1.5 s after the start, once the
    client has set up its terminal), bytes to type)]; returns (exit code or None when it did not
    exit, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out = b""
    deadline = time.time() + timeout
    steps = list(steps)
    code = None
    begun = time.time()
    try:
        while time.time() < deadline:
            want = steps[0][0] if steps else b""
            if steps and (want in out if want is not None else time.time() > begun + 1.5):
                os.write(fd, steps.pop(0)[1])
                out += b"<sent>"
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    break
                out += data
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            time.sleep(2)
            done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.WEXITSTATUS(status)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return code, out


@pytest.mark.parametrize("how", ["default", "flag", "config", "berth", "berth-config"])
def test_attach_detaches_and_container_keeps_running(loaded, tmp_path, how):
    name = "att-" + how
    assert loaded.docker("run", "-dit", "--name", name, "busybox", "sh").returncode == 0
    config_dir = str(tmp_path / "cfg")
    os.makedirs(config_dir)
    argv = [DOCKER, "-H", loaded.host, "attach"]
    keys = b"\x10\x11"
    if how == "berth":
        argv = [os.path.join(os.path.dirname(sys.executable), "berth"), "-H", loaded.host, "attach",
                "--detach-keys", "ctrl-e,e"]
        keys = b"\x05e"
    elif how == "berth-config":
        argv = [os.path.join(os.path.dirname(sys.executable), "berth"), "-H", loaded.host, "attach"]
        with open(os.path.join(config_dir, "config.json"), "w") as f:
            json.dump({"detachKeys": "ctrl-y,z"}, f)
        keys = b"\x19z"
    elif how == "flag":
        argv += ["--detach-keys", "ctrl-x,y"]
        keys = b"\x18y"
    elif how == "config":
        with open(os.path.join(config_dir, "config.json"), "w") as f:
            json.dump({"detachKeys": "ctrl-a,b"}, f)
        keys = b"\x01b"
    env = dict(os.environ, TERM="xterm", DOCKER_CONFIG=config_dir,
               BERTH_CONFIG=os.path.join(config_dir, "config.json"))
    code, out = _attach(argv + [name], env, [(None, b"\r"), (b"#", b"echo $((6*7))z\r"),
                                              (b"42z", keys)])
    assert b"42z" in out, out
    assert code is not None, out  # the client ended: detached
    state = json.loads(loaded.docker("inspect", name).stdout)[0]["State"]
    assert state["Running"] is True, "exit %s at %s (error %r), pid 1 was %s; client said %r" % (
        state["ExitCode"], state["FinishedAt"], state["Error"], state["Pid"], out)
    # the shell still answers a new attach
    code, out = _attach(argv + [name], env, [(None, b"\r"), (b"#", b"echo $((5*5))w\r"),
                                              (b"25w", keys)])
    assert b"25w" in out and code is not None, out
    assert json.loads(loaded.docker("inspect", name).stdout)[0]["State"]["Running"] is True
    loaded.docker("rm", "-f", name)


def test_bad_detach_keys_is_400(loaded):
    assert loaded.docker("create", "-it", "--name", "att-bad", "busybox", "sh").returncode == 0
    status, _, body = loaded.api("POST", "/containers/att-bad/attach?stdin=1&stream=1&detachKeys=ctrl-1")
    assert status == 400 and b"Invalid detach keys" in body
    loaded.docker("rm", "-f", "att-bad")


def _raw_attach(sock_path, name, keys):
    """A hijacked attach with stdin and detachKeys; returns the connected socket after the
    101 answer."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(("POST /containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=%s HTTP/1.1\r\n"
               "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
               % (name, keys)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_detach_while_the_container_writes(loaded):
    """A detach whose client goes away while the container's output is on its way to it (the
    monitor sees the output and the client's end in the same round): the container runs on."""
    name = "att-busy"
    assert loaded.docker("run", "-dit", "--name", name, "busybox", "sh", "-c",
                         "while :; do echo tick; done").returncode == 0
    try:
        for i in range(30):
            s = _raw_attach(loaded.sock, name, "ctrl-e,e")
            assert s.recv(4096), "attach %d: no output" % i  # output flows
            s.sendall(b"\x05e")
            while True:  # the daemon ends the session
                try:
                    if not s.recv(65536):
                        break
                except OSError:
                    break
            s.close()
            state = json.loads(loaded.docker("inspect", name).stdout)[0]["State"]
            assert state["Running"] is True, "detach %d: exit %s (error %r)" % (
                i, state["ExitCode"], state["Error"])
    finally:
        loaded.docker("rm", "-f", name)
