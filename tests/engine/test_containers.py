"""Containers on the real kernel, as root: what a container sees, and every lifecycle verb."""

import os
import re
import signal
import socket
import struct
import threading
import time

import pytest

from runtime.errors import Conflict, InvalidParameter, NotFound, NotModified
from tests.engine.conftest import run_container
from tests.lab.sysutil import children
from tests.imagefactory import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

# Docker's default capability set as a CapEff mask
DOCKER_CAPS = 0x00000000A80425FB


def test_container_sees_its_own_pid1_hostname_mounts_and_empty_network(clean_containers):
    eng = clean_containers
    script = ("echo pid=$$; hostname; cat /proc/mounts; echo net; ls /sys/class/net; "
              "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
              "echo keys=$(cat /proc/keys | wc -c); ls /sys/firmware | wc -l; "
              "echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; "
              "touch /sys/x 2>/dev/null && echo sys-writable; "
              "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/ptmx; "
              "readlink /dev/fd; readlink /dev/stdin; echo loflags=$(cat /sys/class/net/lo/flags); env")
    code, out, err, info = run_container(eng, script)
    text = out.decode()
    assert code == 0, err
    assert "pid=1\n" in text
    assert info["Config"]["Hostname"] == info["Id"][:12]
    assert "\n%s\n" % info["Id"][:12] in text
    mounts = {line.split()[1]: line.split() for line in text.splitlines() if line.count(" ") >= 5}
    assert mounts["/"][2] == "overlay"
    assert mounts["/proc"][2] == "proc"
    assert mounts["/sys"][2] == "sysfs" and "ro" in mounts["/sys"][3].split(",")
    assert mounts["/dev"][2] == "tmpfs"
    assert mounts["/dev/pts"][2] == "devpts"
    assert mounts["/dev/shm"][2] == "tmpfs"
    assert mounts["/dev/mqueue"][2] == "mqueue"
    assert "ro" in mounts["/proc/sys"][3].split(",")
    for path in ("/proc/keys", "/proc/timer_list", "/proc/kcore", "/sys/firmware"):
        if os.path.exists(path):  # masked: /dev/null bound over files, an empty ro tmpfs over dirs
            assert mounts[path][2] == "tmpfs", path
    assert "ro" in mounts["/sys/firmware"][3].split(",")
    assert text.split("net\n")[1].split("\n")[0] == "lo"
    assert int(text.split("loflags=")[1].split()[0], 16) & 1  # IFF_UP
    status = dict(re.findall(r"^(CapEff|CapBnd|NoNewPrivs):\s+(\S+)$", text, re.M))
    assert int(status["CapEff"], 16) == DOCKER_CAPS
    assert int(status["CapBnd"], 16) == DOCKER_CAPS
    assert status["NoNewPrivs"] == "0"  # as dockerd: only with --security-opt no-new-privileges
    assert "keys=0\n0\n" in text
    assert "sysrq-writable" not in text and "sys-writable" not in text
    assert "/proc/self/fd\n/proc/self/fd/0\n" in text
    for dev in ("null", "zero", "full", "random", "urandom", "tty"):
        assert re.search(r"^crw-rw-rw-.* /dev/%s$" % dev, text, re.M), dev
    env = dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z_]+=", line))
    assert env["HOSTNAME"] == info["Id"][:12]
    assert env["PATH"].startswith("/usr/local/sbin:")
    assert env["HOME"] == "/root"
    assert info["NetworkSettings"]["Networks"]
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert info["GraphDriver"]["Data"]["UpperDir"].endswith("/upper")


def test_host_network_user_workdir_and_env(clean_containers):
    eng = clean_containers
    code, out, _, _ = run_container(eng, "readlink /proc/self/ns/net; id; pwd; echo $FOO; hostname",
                                    User="nobody", WorkingDir="/made/here", Env=["FOO=bar"],
                                    HostConfig={"NetworkMode": "host"})
    lines = out.decode().splitlines()
    assert code == 0
    assert lines[0] == os.readlink("/proc/self/ns/net")  # the host's network namespace
    assert lines[1].startswith("uid=65534(nobody) gid=65534(nobody)")
    assert lines[2:] == ["/made/here", "bar", socket.gethostname()]  # host network: host's name
    # its /sys is the host network's (a spare's PID 1 staged one of its own network: replaced),
    # read-only and masked like any other
    code, out, _, _ = run_container(eng, "ls /sys/class/net; ls -A /sys/firmware | wc -l; "
                                    "grep ' /sys ' /proc/mounts", HostConfig={"NetworkMode": "host"})
    lines = out.decode().split()
    assert code == 0 and sorted(os.listdir("/sys/class/net")) == sorted(lines[:-7])
    assert lines[-7] == "0" and lines[-3].startswith("ro,")
    code, out, _, _ = run_container(eng, "id -u; id -g; grep CapEff /proc/self/status", User="1234:5678")
    assert out.decode().split()[:2] == ["1234", "5678"]
    assert int(out.decode().split()[-1], 16) == 0  # non-root: no effective capabilities
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"], "User": "nosuchuser"})["Id"]
    with pytest.raises(InvalidParameter, match="unable to find user nosuchuser"):
        eng.container_start(cid)
    assert eng.container_inspect(cid)["State"]["Status"] == "created"


def test_lifecycle_verbs_states_and_exit_codes(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "trap 'exit 3' TERM; "
                                "trap 'echo hup' HUP; echo up; while true; do sleep 0.1; done"]},
                               name="life")["Id"]
    assert eng.container_inspect("life")["State"]["Status"] == "created"
    assert eng.container_list(all=True, filters={"name": ["life"]})[0]["Status"] == "Created"
    assert eng.container_list(filters={"status": ["created"]})[0]["Id"] == cid
    assert eng.container_list() == []  # not running: only with all=True
    eng.container_start("life")
    assert wait_for(lambda: list(eng.container_logs("life")), timeout=20)  # the traps are set
    with pytest.raises(NotModified):
        eng.container_start("life")
    st = eng.container_inspect(cid)["State"]
    assert st["Status"] == "running" and st["Running"] and st["Pid"] > 0
    assert eng.container_list()[0]["Status"].startswith("Up ")
    assert eng.container_list()[0]["Names"] == ["/life"]

    eng.container_pause("life")
    st = eng.container_inspect(cid)["State"]
    assert st["Status"] == "paused" and st["Paused"]
    assert eng.container_list()[0]["Status"].endswith("(Paused)")
    with pytest.raises(Conflict):
        eng.container_pause("life")
    eng.container_unpause("life")
    assert eng.container_inspect(cid)["State"]["Status"] == "running"
    with pytest.raises(Conflict):
        eng.container_remove("life")

    eng.container_kill("life", "HUP")
    assert wait_for(lambda: b"hup\n" in b"".join(line for _, line in eng.container_logs("life")), timeout=20)
    eng.container_stop("life", timeout=5)
    st = eng.container_inspect(cid)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 3 and not st["Running"]
    assert re.match(r"Exited \(3\) .* ago", eng.container_list(all=True)[0]["Status"])
    with pytest.raises(NotModified):
        eng.container_stop("life")
    with pytest.raises(Conflict):
        eng.container_kill("life")

    eng.container_restart("life", timeout=5)  # from exited
    assert eng.container_inspect(cid)["State"]["Running"]
    assert wait_for(lambda: [line for _, line in eng.container_logs("life")].count(b"up\n") == 2, timeout=20)
    eng.container_restart("life", timeout=5)  # from running: stop (exit 3) then start
    assert eng.container_inspect(cid)["State"]["Running"]
    eng.container_kill("life", 9)
    st = eng.container_inspect(cid)["State"]
    assert st["ExitCode"] == 137 and not st["OOMKilled"]
    assert eng.container_list(all=True, filters={"status": ["exited"]})[0]["Id"] == cid

    eng.container_start("life")
    eng.container_remove("life", force=True)
    with pytest.raises(NotFound, match="No such container: life"):
        eng.container_inspect("life")


def test_stop_escalates_to_sigkill_and_uses_stop_signal(clean_containers):
    eng = clean_containers
    eng.container_create({"Image": "busybox", "Cmd": ["sleep", "100"]}, name="deaf")
    eng.container_start("deaf")
    t = time.time()
    eng.container_stop("deaf", timeout=1)  # PID 1 has no TERM handler: the kernel ignores it
    assert 0.9 < time.time() - t < 15  # generous: other suites load this machine
    assert eng.container_inspect("deaf")["State"]["ExitCode"] == 137
    eng.container_create({"Image": "busybox", "StopSignal": "SIGUSR1",
                          "Cmd": ["sh", "-c", "trap 'exit 42' USR1; echo ready; "
                                  "while true; do sleep 0.1; done"]},
                         name="usr1")
    eng.container_start("usr1")
    assert wait_for(lambda: list(eng.container_logs("usr1")), timeout=20)  # the trap is set
    eng.container_stop("usr1", timeout=10)
    assert eng.container_inspect("usr1")["State"]["ExitCode"] == 42


def test_wait_conditions(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 0.3; exit 4"]})["Id"]
    got = {}

    def waiter(cond, wait):
        got[cond] = wait(20)["StatusCode"]

    threads = [threading.Thread(target=waiter, args=(c, eng.container_wait_begin(cid, c)))
               for c in ("next-exit", "removed")]  # registered now, blocking in threads
    for t in threads:
        t.start()
    eng.container_start(cid)
    assert eng.container_wait(cid)["StatusCode"] == 4
    assert eng.container_wait(cid, "not-running")["StatusCode"] == 4  # already exited: at once
    threads[0].join(10)
    assert got["next-exit"] == 4
    eng.container_remove(cid)
    threads[1].join(10)
    assert got["removed"] == 4


def test_names_generated_unique_and_validated(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    name = eng.container_inspect(cid)["Name"]
    assert re.match(r"^/[a-z]+_[a-z]+\d*$", name)
    assert eng.container_inspect(name.lstrip("/"))["Id"] == cid
    assert eng.container_inspect(cid[:10])["Id"] == cid
    eng.container_create({"Image": "busybox", "Cmd": ["true"]}, name="dup")
    with pytest.raises(Conflict, match='name "/dup" is already in use'):
        eng.container_create({"Image": "busybox", "Cmd": ["true"]}, name="dup")
    with pytest.raises(InvalidParameter, match="Invalid container name"):
        eng.container_create({"Image": "busybox", "Cmd": ["true"]}, name="bad name!")
    # the name index follows renames and removals
    dup = eng.container_inspect("dup")["Id"]
    eng.container_rename("dup", "dup2")
    assert eng.container_inspect("/dup2")["Id"] == dup
    with pytest.raises(NotFound, match="No such container: dup"):
        eng.container_inspect("dup")
    again = eng.container_create({"Image": "busybox", "Cmd": ["true"]}, name="dup")["Id"]
    with pytest.raises(Conflict, match='name "/dup2" is already in use by container "%s"' % dup):
        eng.container_rename("dup", "dup2")
    eng.container_remove("dup2")
    with pytest.raises(NotFound):
        eng.container_inspect("dup2")
    eng.container_rename("dup", "dup2")
    assert eng.container_inspect("dup2")["Id"] == again


def test_bad_input_is_refused_and_leaves_nothing(clean_containers, tmp_path):
    eng = clean_containers
    before = sorted(os.listdir(eng.test_root / "containers"))
    with pytest.raises(NotFound, match="No such image: nosuch"):
        eng.container_create({"Image": "nosuch:1", "Cmd": ["true"]})
    with pytest.raises(InvalidParameter, match="bind source path does not exist: %s" % (tmp_path / "gone")):
        eng.container_create({"Image": "busybox", "Cmd": ["true"],
                              "HostConfig": {"Binds": ["%s:/x" % (tmp_path / "gone"), "newvol:/y"]}})
    with pytest.raises(InvalidParameter, match="invalid signal"):
        eng.container_create({"Image": "busybox", "Cmd": ["true"], "StopSignal": "SIGNOPE"})
    with pytest.raises(InvalidParameter, match="Minimum memory limit"):
        eng.container_create({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 1000}})
    assert sorted(os.listdir(eng.test_root / "containers")) == before
    assert eng.volume_list() == []
    for verb in (eng.container_start, eng.container_inspect, eng.container_remove, eng.container_pause):
        with pytest.raises(NotFound, match="No such container: ghost"):
            verb("ghost")
    cid = eng.container_create({"Image": "busybox", "Cmd": ["/no/such/binary"]})["Id"]
    with pytest.raises(InvalidParameter, match='exec: "/no/such/binary": executable file not found'):
        eng.container_start(cid)
    st = eng.container_inspect(cid)["State"]
    assert st["Status"] == "created" and st["ExitCode"] == 127 and "executable file not found" in st["Error"]
    with pytest.raises(InvalidParameter, match="invalid wait condition"):
        eng.container_wait(cid, "sometimes")
    # the command is looked up through the container's own PATH (runc's LookPath); a file that
    # is there but not executable is 126
    for cmd, env, code, text in ((["passwd"], ["PATH=/etc"], 127, "executable file not found"),
                                 (["/etc/passwd"], [], 126, "permission denied"),
                                 (["nosuch"], [], 127, "executable file not found")):
        cid = eng.container_create({"Image": "busybox", "Cmd": cmd, "Env": env})["Id"]
        with pytest.raises(InvalidParameter, match=text):
            eng.container_start(cid)
        assert eng.container_inspect(cid)["State"]["ExitCode"] == code
        eng.container_remove(cid)
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "echo $PATH"],
                                "Env": ["PATH=/bin"]})["Id"]
    sock = eng.container_attach(cid)
    eng.container_start(cid)
    assert _frames(_read_all(sock)) == [(1, b"/bin\n")]
    sock.close()
    eng.container_wait(cid)
    eng.container_remove(cid)


def test_an_execve_that_fails_after_the_start_is_the_containers_output(clean_containers, tmp_path):
    """The start is reported once only the execve is left (runc's start returns before its
    init's execve): what the lookup cannot see, an executable file the kernel cannot run, fails
    in the container, which says why on its stderr and exits 126, as with dockerd and runc.
    A start with --init, a restart by the policy and a TTY take the same path."""
    eng = clean_containers
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF but not really")
    bad.chmod(0o755)
    for extra in ({}, {"Init": True}):
        code, out, err, info = run_container(eng, ["/x/bad"], HostConfig=dict({"Binds": ["%s:/x" % tmp_path]},
                                                                              **extra))
        assert (code, out) == (126, b"")
        assert err == b'exec: "/x/bad": Exec format error\n'
        assert info["State"]["Error"] == ""
    policy = {"Name": "on-failure", "MaximumRetryCount": 1}
    cid = eng.container_create({"Image": "busybox", "Cmd": ["/x/bad"], "Tty": True,
                                "HostConfig": {"Binds": ["%s:/x" % tmp_path], "RestartPolicy": policy}})["Id"]
    eng.container_start(cid)
    assert wait_for(lambda: eng.container_inspect(cid)["RestartCount"] == 1 and
                    not eng.container_inspect(cid)["State"]["Running"], timeout=20)
    assert eng.container_inspect(cid)["State"]["ExitCode"] == 126
    logs = b"".join(line for _, line in eng.container_logs(cid))
    assert logs.count(b'exec: "/x/bad": Exec format error') == 2, logs
    eng.container_remove(cid)


def test_remove_deletes_writable_layer_cgroup_and_state(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "echo data > /layerfile; rm /bin/vi; "
                                                                    "sleep 100"]})["Id"]
    eng.container_start(cid)
    info = eng.container_inspect(cid)
    upper = info["GraphDriver"]["Data"]["UpperDir"]
    assert wait_for(lambda: os.path.exists(os.path.join(upper, "layerfile")), timeout=20)
    assert eng.container_upper_dir(cid) == upper
    assert eng.containers_using_image(info["Image"]) == [cid]
    cg = eng.containers.get(cid).cgroup()
    assert cg.exists() and info["State"]["Pid"] in cg.pids()
    eng.container_remove(cid, force=True)
    assert not os.path.exists(os.path.dirname(upper))
    assert not cg.exists()
    assert eng.containers_using_image(info["Image"]) == []
    code, out, _, _ = run_container(eng, "cat /layerfile 2>&1; ls /bin/vi")
    assert b"No such file" in out and b"/bin/vi" in out


def _frames(data):
    out = []
    while data:
        stream, size = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    return out


def _read_all(sock):
    sock.settimeout(30)
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk


def test_exec_joins_namespaces_and_cgroup_with_exit_codes(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "100"], "Hostname": "box"})["Id"]
    with pytest.raises(Conflict, match="is not running"):
        eng.exec_create(cid, {"Cmd": ["true"]})
    eng.container_start(cid)
    ex = eng.exec_create(cid, {"Cmd": ["sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                       "cat /proc/self/cgroup; ls /sys/class/net; echo oops >&2; exit 5"],
                               "AttachStdout": True, "AttachStderr": True})
    sock = eng.exec_start(ex)
    frames = _frames(_read_all(sock))
    sock.close()
    out = b"".join(d for s, d in frames if s == 1).decode()
    assert b"".join(d for s, d in frames if s == 2) == b"oops\n"
    lines = out.splitlines()
    assert lines[0] == "box"
    assert lines[1].strip() == "sleep 100"
    assert any(line.endswith("/" + cid) for line in lines if ":freezer:" in line or ":pids:" in line
               or line.startswith("0::"))
    assert lines[-1] == "lo"
    assert wait_for(lambda: eng.exec_inspect(ex)["ExitCode"] == 5, timeout=20)
    info = eng.exec_inspect(ex)
    assert info["Running"] is False and info["Pid"] > 0 and info["ProcessConfig"]["entrypoint"] == "sh"
    assert eng.container_inspect(cid)["ExecIDs"] == [ex]
    with pytest.raises(Conflict, match="already run"):
        eng.exec_start(ex)

    ex_fds = eng.exec_create(cid, {"Cmd": ["sh", "-c", "ls /proc/1/fd; echo; ls /proc/$$/fd; true"]})
    sock = eng.exec_start(ex_fds)
    fds = b"".join(d for s, d in _frames(_read_all(sock))).decode().split("\n\n")
    sock.close()
    assert fds[0].split() == ["0", "1", "2"]  # no engine or monitor fd leaks into PID 1
    assert fds[1].split() == ["0", "1", "2"]  # nor into an exec'd process

    ex2 = eng.exec_create(cid, {"Cmd": ["sleep", "1"]})
    assert eng.exec_start(ex2, detach=True) is None
    assert eng.exec_inspect(ex2)["Running"] is True
    assert wait_for(lambda: eng.exec_inspect(ex2)["ExitCode"] == 0, timeout=20)
    ex3 = eng.exec_create(cid, {"Cmd": ["nosuchcmd"]})
    with pytest.raises(InvalidParameter, match="executable file not found"):
        eng.exec_start(ex3)
    assert eng.exec_inspect(ex3)["ExitCode"] == 127
    with pytest.raises(NotFound):
        eng.exec_inspect("nope")


def test_attach_stdin_and_tty(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "read x; echo got $x; echo e >&2"],
                                "OpenStdin": True, "AttachStdin": True})["Id"]
    eng.container_start(cid)
    sock = eng.container_attach(cid, stdin=True)
    sock.sendall(b"hello\n")
    data = _read_all(sock)
    sock.close()
    assert sorted(_frames(data)) == [(1, b"got hello\n"), (2, b"e\n")]
    assert eng.container_wait(cid)["StatusCode"] == 0
    with pytest.raises(Conflict):  # nothing to stream from an exited container
        eng.container_attach(cid, stream=False)

    cid = eng.container_create({"Image": "busybox", "Tty": True, "OpenStdin": True,
                                "Cmd": ["sh", "-c", "stty size; read x; echo tty:$x; tty"]})["Id"]
    eng.container_start(cid)
    sock = eng.container_attach(cid, stdin=True)
    eng.container_resize(cid, 30, 100)
    sock.sendall(b"abc\n")
    raw = _read_all(sock)
    sock.close()
    assert b"tty:abc\r\n/dev/pts/0\r\n" in raw  # raw stream with the tty's CRLF; the container's devpts
    logged = b"".join(line for _, line in eng.container_logs(cid))
    assert b"tty:abc" in logged


def test_attach_before_start_gets_every_byte(clean_containers):
    """Docker clients attach, then start: a PID 1 that exits at once must still reach them,
    also with AutoRemove removing the container right after its exit."""
    eng = clean_containers
    for i in range(10):
        cid = eng.container_create({"Image": "busybox", "Cmd": ["echo", "run%d" % i],
                                    "HostConfig": {"AutoRemove": i % 2 == 1}})["Id"]
        sock = eng.container_attach(cid, stdout=True, stderr=True)
        eng.container_start(cid)
        assert _frames(_read_all(sock)) == [(1, b"run%d\n" % i)]
        sock.close()
        if i % 2:
            assert wait_for(lambda gone=cid: gone not in [c["Id"] for c in eng.container_list(all=True)])
        else:
            assert eng.container_wait(cid)["StatusCode"] == 0
            eng.container_remove(cid)


def test_attach_to_exited_container_waits_for_next_start(clean_containers):
    """`start -a` of an exited container: the attach gets the next run's output, stdin included."""
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "OpenStdin": True, "StdinOnce": True,
                                "Cmd": ["sh", "-c", "read x; echo got:$x"]})["Id"]
    eng.container_start(cid)
    eng.container_attach(cid, stdin=True).close()  # the first run reads EOF
    assert eng.container_wait(cid)["StatusCode"] == 0
    sock = eng.container_attach(cid, stdin=True)
    sock.sendall(b"second\n")  # buffered until the start
    eng.container_start(cid)
    assert (1, b"got:second\n") in _frames(_read_all(sock))
    sock.close()
    assert eng.container_wait(cid)["StatusCode"] == 0


def test_removing_a_created_container_ends_its_early_attach(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    sock = eng.container_attach(cid)
    sock.settimeout(10)
    eng.container_remove(cid)
    assert sock.recv(100) == b""
    sock.close()


def test_logs_json_file_tail_since_timestamps_follow(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "for i in 1 2 3; do echo out$i; "
                                "echo err$i >&2; done; sleep 0.5; echo late"]})["Id"]
    eng.container_start(cid)
    follow = [line for _, line in eng.container_logs(cid, follow=True)]  # until it exits
    assert follow[-1] == b"late\n" and len(follow) == 7
    path = eng.container_inspect(cid)["LogPath"]
    with open(path) as f:
        import json
        recs = [json.loads(line) for line in f]
    assert list(recs[0]) == ["log", "stream", "time"]
    assert {"log": "out1\n", "stream": "stdout"}.items() <= recs[0].items()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", recs[0]["time"])
    assert [line for _, line in eng.container_logs(cid, stderr=False)] == [b"out1\n", b"out2\n", b"out3\n",
                                                                         b"late\n"]
    assert [line for _, line in eng.container_logs(cid, stdout=False, tail="2")] == [b"err2\n", b"err3\n"]
    stamped = [line for _, line in eng.container_logs(cid, timestamps=True, tail="1")]
    assert re.match(rb"^\d{4}-\d\d-\d\dT[\d:.]+Z late\n$", stamped[0])
    from runtime.timefmt import parse_rfc3339
    # between the last early line and "late", by the log's own clock (robust to a slow monitor)
    cut = (parse_rfc3339(recs[-2]["time"]) + parse_rfc3339(recs[-1]["time"])) / 2
    assert [line for _, line in eng.container_logs(cid, since=cut)] == [b"late\n"]
    assert [line for _, line in eng.container_logs(cid, until=cut)] == [r["log"].encode() for r in recs[:-1]]


def test_exec_tty_resize_and_attach_log_replay(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "echo first; sleep 100"]})["Id"]
    eng.container_start(cid)
    assert wait_for(lambda: list(eng.container_logs(cid)), timeout=20)
    sock = eng.container_attach(cid, logs=True)
    sock.settimeout(5)
    assert _frames(sock.recv(100)) == [(1, b"first\n")]  # the log so far, then live output
    sock.close()
    ex = eng.exec_create(cid, {"Cmd": ["sh", "-c", "sleep 0.5; stty size; tty"], "Tty": True})
    sock = eng.exec_start(ex)
    eng.exec_resize(ex, 33, 111)
    raw = _read_all(sock)
    sock.close()
    assert raw == b"33 111\r\n/dev/pts/0\r\n"  # raw bytes, no frames; a pty of the container's devpts
    assert wait_for(lambda: eng.exec_inspect(ex)["ExitCode"] == 0, timeout=20)
    with pytest.raises(Conflict):
        eng.exec_resize(ex, 10, 10)


def test_auto_remove_readonly_rootfs_tmpfs_and_shm_size(clean_containers, tmp_path):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox",
                                "Cmd": ["sh", "-c", "grep ' / ' /proc/mounts > /out/m; exit 6"],
                                "HostConfig": {"AutoRemove": True, "Binds": ["%s:/out" % tmp_path]}})["Id"]
    waiter = eng.container_wait_begin(cid, "removed")  # before start: it may be gone at once
    eng.container_start(cid)
    assert waiter(10)["StatusCode"] == 6
    assert "overlay" in (tmp_path / "m").read_text()
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "100"],
                                "HostConfig": {"AutoRemove": True}})["Id"]
    eng.container_start(cid)
    eng.container_restart(cid, timeout=0)  # restarting is not exiting: it stays
    assert eng.container_inspect(cid)["State"]["Running"]
    waiter = eng.container_wait_begin(cid, "removed")
    eng.container_kill(cid)
    assert waiter(10)["StatusCode"] == 137
    with pytest.raises(NotFound):
        eng.container_inspect(cid)
    # a wait that comes after the removal (docker-py's run(auto_remove) waits once its log
    # stream ends) still gets the exit code, by id, short id or name; not a stranger's
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 3"],
                                "HostConfig": {"AutoRemove": True}}, name="gone-soon")["Id"]
    waiter = eng.container_wait_begin(cid, "removed")
    eng.container_start(cid)
    assert waiter(10)["StatusCode"] == 3
    assert wait_for(lambda: cid in eng.container_service.auto_removed, timeout=10)
    for name in (cid, cid[:12], "gone-soon"):
        assert eng.container_wait_begin(name)(10) == {"StatusCode": 3, "Error": None}
    with pytest.raises(NotFound):
        eng.container_wait_begin("never-was")
    code, out, _, _ = run_container(eng, "touch /x 2>&1; echo ok > /run/t && cat /run/t; "
                                         "grep -E ' /(run|dev/shm) ' /proc/mounts",
                                    HostConfig={"ReadonlyRootfs": True, "Tmpfs": {"/run": "size=1m"},
                                                "ShmSize": 8 << 20})
    text = out.decode()
    assert "Read-only file system" in text and "ok\n" in text
    assert re.search(r"tmpfs /run tmpfs rw,.*size=1024k", text)
    assert re.search(r"shm /dev/shm tmpfs .*size=8192k", text)


def test_wait_begin_does_not_miss_a_fast_exit(clean_containers):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    waiter = eng.container_wait_begin(cid, "next-exit")  # as the API does before `docker run` starts it
    eng.container_start(cid)
    time.sleep(0.2)  # long gone
    assert waiter(5) == {"StatusCode": 0, "Error": None}
    cid = eng.container_create({"Image": "busybox", "Cmd": ["nope"]})["Id"]
    waiter = eng.container_wait_begin(cid, "next-exit")
    with pytest.raises(InvalidParameter):
        eng.container_start(cid)
    assert waiter(5)["StatusCode"] == 127


def test_parallel_runs_from_threads(clean_containers):
    """The daemon is threaded: concurrent create/start/wait/rm share one forkserver."""
    eng = clean_containers
    results = {}

    def one(i):
        results[i] = run_container(eng, "echo n=%d; exit %d" % (i, i))[:2]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: (i, b"n=%d\n" % i) for i in range(6)}


def test_user_groups_from_the_containers_own_files(clean_containers, tmp_path):
    from tests import imagefactory
    eng = clean_containers
    layer = imagefactory.layer_tar([
        ("file", "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
        ("file", "etc/group", b"root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:other,app\n"),
        ("dir", "home/app")])
    path = imagefactory.busybox_image_tar(tmp_path / "u.tar", ref="usrimg:1", layers=[layer], user="app")
    with open(path, "rb") as f:
        eng.image_load(f)
    code, out, _, _ = run_container(eng, "id -u; id -g; id -G; echo $HOME", image="usrimg:1")
    assert out.decode().split("\n")[:4] == ["1000", "1000", "1000 10 29", "/home/app"]  # image's USER
    code, out, _, _ = run_container(eng, "id -u; id -g; id -G", image="usrimg:1", User="app:wheel")
    assert out.decode().split() == ["1000", "10", "10"]  # an explicit group: no supplementary ones
    code, out, _, _ = run_container(eng, "id -G", image="usrimg:1",
                                    HostConfig={"GroupAdd": ["audio", "4242"]})
    assert out.decode().split() == ["1000", "10", "29", "4242"]
    code, out, _, _ = run_container(eng, "id -u", image="usrimg:1", User="0")
    assert out == b"0\n"
    eng.image_remove("usrimg:1")


def test_the_command_starts_with_default_signal_dispositions(clean_containers):
    """What the engine's processes ignore or catch (SIGPIPE, SIGCHLD, SIGINT...) is not handed
    to the command, plain or under --init; no signal is blocked."""
    eng = clean_containers
    for extra in ({}, {"HostConfig": {"Init": True}}):
        code, out, err, _ = run_container(eng, ["cat", "/proc/self/status"], **extra)
        assert code == 0, err
        status = dict(re.findall(r"^(Sig\w+):\s+(\S+)$", out.decode(), re.M))
        assert {k: int(status[k], 16) for k in ("SigIgn", "SigCgt", "SigBlk")} == \
            {"SigIgn": 0, "SigCgt": 0, "SigBlk": 0}, (extra, status)


def test_cgroup_the_kernel_refuses_fails_the_start_cleanly(clean_containers):
    """The monitor makes the cgroup while PID 1 builds its root: a limit the kernel refuses
    (a CFS quota under 1 ms) fails the start with one line naming the cgroup, and leaves no
    cgroup and no process behind; the container can be removed."""
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"],
                                "HostConfig": {"CpuQuota": 500, "CpuPeriod": 100000}})["Id"]
    with pytest.raises(InvalidParameter, match="cannot set up the container's cgroup") as exc:
        eng.container_start(cid)
    assert "\n" not in str(exc.value)
    st = eng.container_inspect(cid)["State"]
    assert st["Running"] is False and st["ExitCode"] != 0
    assert not eng.containers.get(cid).cgroup().exists()
    eng.container_remove(cid)


def test_starts_through_prepared_spares_hand_over_every_time(clean_containers):
    """Starts alternate with pauses, so most take a spare whose PID 1 was forked ahead: every
    run must print its output and every failing one must fail (a lost hand-off shows as an
    empty log or a "started" container whose monitor died)."""
    eng = clean_containers
    for i in range(30):
        code, out, _, info = run_container(eng, "echo run%d" % i)
        assert (code, out) == (0, b"run%d\n" % i), info["State"]
        cid = eng.container_create({"Image": "busybox", "Cmd": ["true"], "User": "nosuchuser"})["Id"]
        with pytest.raises(InvalidParameter, match="unable to find user nosuchuser"):
            eng.container_start(cid)
        eng.container_remove(cid)
        time.sleep(0.03 * (i % 3))  # idle long enough, sometimes, for the next spare


def test_a_killed_prepared_init_fails_one_start_clearly(clean_containers):
    """Someone kills the PID 1 a spare forked ahead: the start that gets that spare fails with
    one line saying so, leaves the container `created`, and the next start works."""
    eng = clean_containers
    run_container(eng, "true")  # the forkserver runs
    spare = init = None
    deadline = time.time() + 10
    while time.time() < deadline and init is None:
        time.sleep(0.05)
        for child in children(eng.spawner.pid):
            with open("/proc/%d/comm" % child) as f:
                if f.read().strip() != "berth-forksrv":
                    continue  # a monitor
            kids = children(child)
            if kids:
                spare, init = child, kids[0]
    assert init is not None, "no spare with a prepared PID 1"
    os.kill(init, signal.SIGKILL)

    def dead():  # a zombie or reaped: its end of the hand-off socket is closed
        try:
            with open("/proc/%d/stat" % init) as f:
                return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
        except OSError:
            return True
    assert wait_for(dead)  # SIGKILL takes effect asynchronously (slowly on a loaded machine)
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"]})["Id"]
    with pytest.raises(InvalidParameter, match="died before it .*start it again") as exc:
        eng.container_start(cid)
    assert "\n" not in str(exc.value)
    assert eng.container_inspect(cid)["State"]["Status"] == "created"
    time.sleep(0.1)  # a new spare
    eng.container_start(cid)
    assert eng.container_wait(cid)["StatusCode"] == 0
    eng.container_remove(cid)
    assert wait_for(lambda: not os.path.exists("/proc/%d" % spare))  # that monitor is gone
