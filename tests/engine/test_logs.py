"""Log drivers and rotation on the real engine: json-file max-size/max-file/compress (the
monitor rotates between whole lines), the local driver's compact format, none, reading across
rotated files, a follower through rotations, daemon.json log-opts, and bad options refused."""

import os
import threading

import pytest

from runtime.errors import InvalidParameter
from tests.engine.conftest import make_engine



def _lines_cmd(n):
    pad = "x" * 140
    return "awk 'BEGIN { for (i = 0; i < %d; i++) printf \"%%08d %s\\n\", i }'" % (n, pad)


def _run(eng, cmd, log_config, **extra):
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", cmd],
                                "HostConfig": dict({"LogConfig": log_config}, **extra)})["Id"]
    eng.container_start(cid)
    return cid


def _disk(eng, cid):
    d = os.path.join(str(eng.test_root), "containers", cid)
    out = {}
    for base, _, names in os.walk(d):
        for n in names:
            if "log" in n:
                out[os.path.relpath(os.path.join(base, n), d)] = os.path.getsize(os.path.join(base, n))
    return out


def _numbers(lines):
    return [int(line.split(b" ")[0]) for line in lines]


def test_json_file_50mb_keeps_about_3mb_and_the_last_lines(clean_containers):
    eng = clean_containers
    n = 250000
    cid = _run(eng, _lines_cmd(n), {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "3"}})
    assert eng.container_wait(cid, timeout=120)["StatusCode"] == 0
    files = _disk(eng, cid)
    assert sorted(files) == sorted([cid + "-json.log", cid + "-json.log.1", cid + "-json.log.2"]), files
    assert all(size <= 1024 * 1024 for size in files.values()), files
    assert sum(files.values()) <= 3 * 1024 * 1024
    tail = [line for _, line in eng.container_logs(cid, tail="10")]
    assert _numbers(tail) == list(range(n - 10, n))
    # every line the three files hold, oldest first, with none missing in between
    kept = _numbers([line for _, line in eng.container_logs(cid)])
    assert kept == list(range(kept[0], n)) and len(kept) > 3 * 3500


def test_compressed_rotation_is_read_back(clean_containers):
    eng = clean_containers
    n = 30000
    cid = _run(eng, _lines_cmd(n), {"Type": "json-file",
                                    "Config": {"max-size": "1m", "max-file": "4", "compress": "true"}})
    assert eng.container_wait(cid, timeout=60)["StatusCode"] == 0
    files = _disk(eng, cid)
    assert cid + "-json.log.1.gz" in files and cid + "-json.log.3.gz" in files, files
    assert not any(name.endswith((".1", ".2", ".3")) for name in files), files
    kept = _numbers([line for _, line in eng.container_logs(cid)])
    assert kept == list(range(kept[0], n)) and kept[0] < n - 3 * 5000


def test_a_follower_gets_every_line_through_rotations(clean_containers):
    eng = clean_containers
    n = 20000  # ~4 MB of log: four rotations of 1 MB, none dropped (max-file 8)
    log_config = {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "8"}}
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", "sleep 0.5; " + _lines_cmd(n)],
                                "HostConfig": {"LogConfig": log_config}})["Id"]
    eng.container_start(cid)
    got = []
    reader = threading.Thread(target=lambda: got.extend(
        line for _, line in eng.container_logs(cid, follow=True)))
    reader.start()
    reader.join(60)
    assert not reader.is_alive()
    assert _numbers(got) == list(range(n))
    assert len([f for f in _disk(eng, cid) if ".log." in f]) >= 3


def test_local_driver_compact_format_rotation_and_timestamps(clean_containers):
    eng = clean_containers
    cid = _run(eng, "echo out; echo err >&2; printf partial", {"Type": "local", "Config": {}})
    assert eng.container_wait(cid, timeout=20)["StatusCode"] == 0
    info = eng.container_inspect(cid)
    assert info["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {}}
    assert info["LogPath"] == ""
    assert "local-logs/container.log" in _disk(eng, cid)
    with open(os.path.join(str(eng.test_root), "containers", cid, "local-logs", "container.log"), "rb") as f:
        assert b"\x0a\x06stdout" in f.read()  # protobuf LogEntry: source = "stdout"
    assert list(eng.container_logs(cid)) == [(1, b"out\n"), (2, b"err\n"), (1, b"partial")]
    stamped = [line for _, line in eng.container_logs(cid, timestamps=True, stderr=False)]
    assert stamped[0].endswith(b"Z out\n") and len(stamped[0].split(b" ")[0]) == 30
    n = 12000
    cid = _run(eng, _lines_cmd(n), {"Type": "local", "Config": {"max-size": "512k", "max-file": "3"}})
    assert eng.container_wait(cid, timeout=60)["StatusCode"] == 0
    files = _disk(eng, cid)
    assert "local-logs/container.log.1.gz" in files and "local-logs/container.log.2.gz" in files, files
    assert _numbers([line for _, line in eng.container_logs(cid, tail="3")]) == [n - 3, n - 2, n - 1]


def test_none_driver_keeps_nothing_and_logs_say_so(clean_containers):
    eng = clean_containers
    cid = _run(eng, "echo hidden", {"Type": "none"})
    assert eng.container_wait(cid, timeout=20)["StatusCode"] == 0
    assert _disk(eng, cid) == {}
    with pytest.raises(InvalidParameter, match="does not support reading"):
        list(eng.container_logs(cid))


def test_daemon_log_opts_are_the_default(tmp_path, busybox_tar):
    import uuid
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    eng = make_engine(tmp_path / "root", {"cgroup-parent": parent,
                                          "log-opts": {"max-size": "1m", "max-file": "2"}})
    try:
        with open(busybox_tar, "rb") as f:
            eng.image_load(f)
        cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["true"]})["Id"]
        assert eng.container_inspect(cid)["HostConfig"]["LogConfig"] == {
            "Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
        own = eng.container_create({"Image": "busybox:latest", "Cmd": ["true"], "HostConfig": {
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "5m"}}}})["Id"]
        own_opts = eng.container_inspect(own)["HostConfig"]["LogConfig"]["Config"]
        assert own_opts == {"max-size": "5m", "max-file": "2"}
        local = eng.container_create({"Image": "busybox:latest", "Cmd": ["true"], "HostConfig": {
            "LogConfig": {"Type": "local"}}})["Id"]
        assert eng.container_inspect(local)["HostConfig"]["LogConfig"]["Config"] == {}
        for c in (cid, own, local):
            eng.container_remove(c)
    finally:
        eng.close()
        from tests.engine.conftest import _cgroup_dirs
        for d in _cgroup_dirs(parent):
            if os.path.isdir(d):
                os.rmdir(d)


@pytest.mark.parametrize("log_config, message", [
    ({"Type": "syslog"}, "no log driver named 'syslog' is registered"),
    ({"Type": "json-file", "Config": {"max-bytes": "1m"}}, "unknown log opt 'max-bytes' for the json-file"),
    ({"Type": "local", "Config": {"labels": "a"}}, "unknown log opt 'labels' for the local"),
    ({"Type": "none", "Config": {"max-size": "1m"}}, "unknown log opt 'max-size' for the none"),
    ({"Type": "json-file", "Config": {"max-size": "lots"}}, "invalid log opt max-size 'lots'"),
    ({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "0"}}, "cannot be less than 1"),
    ({"Type": "json-file", "Config": {"max-file": "x"}}, "invalid log opt max-file 'x'"),
    ({"Type": "json-file", "Config": {"compress": "true"}}, "compress needs max-size"),
])
def test_bad_log_config_is_refused_and_nothing_created(clean_containers, log_config, message):
    eng = clean_containers
    before = os.listdir(os.path.join(str(eng.test_root), "containers"))
    with pytest.raises(InvalidParameter, match=message) as err:
        eng.container_create({"Image": "busybox:latest", "Cmd": ["true"],
                              "HostConfig": {"LogConfig": log_config}})
    assert "\n" not in str(err.value)
    assert os.listdir(os.path.join(str(eng.test_root), "containers")) == before


def test_logs_has_what_pid1_wrote_before_the_request(clean_containers):
    """`logs` has the monitor copy what is in PID 1's pipes first: with the monitor stopped,
    a line PID 1's stdout got is still in the answer once the monitor runs again."""
    import signal
    import time
    eng = clean_containers
    cid = _run(eng, "echo first; exec sleep 1000", {"Type": "json-file"})
    deadline = time.time() + 10
    while [line for _, line in eng.container_logs(cid)] != [b"first\n"]:
        assert time.time() < deadline
        time.sleep(0.02)
    monitor = eng.containers.get(cid).started()["MonitorPid"]
    os.kill(monitor, signal.SIGSTOP)
    try:
        ex = eng.exec_create(cid, {"Cmd": ["sh", "-c", "echo late > /proc/1/fd/1"]})
        eng.exec_start(ex, detach=True)
        while eng.exec_inspect(ex)["Running"] or eng.exec_inspect(ex)["ExitCode"] is None:
            assert time.time() < deadline
            time.sleep(0.02)
        got = []
        reader = threading.Thread(target=lambda: got.extend(line for _, line in eng.container_logs(cid)))
        reader.start()
        time.sleep(0.3)  # the reader waits for the stopped monitor
    finally:
        os.kill(monitor, signal.SIGCONT)
    reader.join(10)
    assert got == [b"first\n", b"late\n"]
