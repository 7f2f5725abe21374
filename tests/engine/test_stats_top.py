"""Stats and top on the real engine: a busy container's cpu, memory and pids figures from its
cgroup (this machine: v1), one-shot and chained readings, the v2 files' layout as a v2 kernel
writes them, and top's ps lines of the container's own processes."""

import time

import pytest

from runtime.container import stats
from runtime.errors import Conflict, InvalidParameter


def _busy(eng):
    cmd = "head -c 8000000 /dev/zero | tail -c 1 >/dev/null; while :; do :; done"
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", cmd]})["Id"]
    eng.container_start(cid)
    return cid


def test_stats_one_shot_and_chained(clean_containers):
    eng = clean_containers
    cid = _busy(eng)
    one = next(eng.container_stats(cid, stream=False, one_shot=True))
    assert one["id"] == cid and one["name"].lstrip("/") == eng.container_inspect(cid)["Name"].lstrip("/")
    assert one["memory_stats"]["usage"] > 0 and one["memory_stats"]["limit"] > one["memory_stats"]["usage"]
    assert one["pids_stats"]["current"] >= 1
    assert one["cpu_stats"]["online_cpus"] >= 1 and one["cpu_stats"]["system_cpu_usage"] > 0
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    for key in ("read", "networks", "precpu_stats", "cpu_stats", "memory_stats", "blkio_stats"):
        assert key in one
    two = next(eng.container_stats(cid, stream=False))
    cpu = two["cpu_stats"]["cpu_usage"]["total_usage"] - two["precpu_stats"]["cpu_usage"]["total_usage"]
    system = two["cpu_stats"]["system_cpu_usage"] - two["precpu_stats"]["system_cpu_usage"]
    assert cpu > 0.1 * 1e9 and system > 0  # the busy loop used >= 10% of a CPU over the second
    assert two["preread"] != "0001-01-01T00:00:00Z"
    stream = eng.container_stats(cid, stream=True)
    a, b = next(stream), next(stream)
    stream.close()
    assert b["precpu_stats"] == a["cpu_stats"]
    eng.container_kill(cid)
    gone = next(eng.container_stats(cid, stream=False, one_shot=True))
    assert gone["memory_stats"] == {} and gone["read"].startswith("0001")


def test_cgroup_v2_files_are_read_as_docker_reports_them(tmp_path):
    """The v2 figures from the files' format (cpu.stat in µs, memory.max "max", io.stat); no
    cgroup v2 memory controller on this machine, so its layout is written here."""
    d = tmp_path / "cg"
    d.mkdir()
    (d / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 4\n"
                                "nr_throttled 1\nthrottled_usec 30\n")
    (d / "memory.current").write_text("1048576\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 524288\nfile 524288\ninactive_file 4096\n")
    (d / "pids.current").write_text("3\n")
    (d / "pids.max").write_text("max\n")
    (d / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")

    class V2(object):
        path = str(d)

    s = stats.sample(V2(), 0, "x", "id")
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 2500000
    assert s["cpu_stats"]["cpu_usage"]["usage_in_kernelmode"] == 500000
    throttling = {"periods": 4, "throttled_periods": 1, "throttled_time": 30000}
    assert s["cpu_stats"]["throttling_data"] == throttling
    assert s["memory_stats"]["usage"] == 1048576 and s["memory_stats"]["limit"] == stats.host_memory()
    assert s["memory_stats"]["stats"]["inactive_file"] == 4096
    assert s["pids_stats"] == {"current": 3}
    assert s["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 8192}]


def test_top_lists_the_containers_processes(clean_containers):
    eng = clean_containers
    cmd = ["sh", "-c", "sleep 1000 & exec sleep 999"]
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": cmd})["Id"]
    eng.container_start(cid)
    pid = eng.container_inspect(cid)["State"]["Pid"]
    # Until both have settled: the shell's background child execs later, and busybox's
    # sh runs an applet by exec'ing /proc/self/exe (comm "exe") before it names itself.
    for _ in range(200):
        res = eng.container_top(cid)
        cmds = sorted(p[-1] for p in res["Processes"])
        comms = sorted(p[1] for p in eng.container_top(cid, "-o pid,comm")["Processes"])
        if cmds == ["sleep 1000", "sleep 999"] and comms == ["sleep", "sleep"]:
            break
        time.sleep(0.02)
    assert res["Titles"][:2] == ["UID", "PID"] and res["Titles"][-1] == "CMD"
    assert cmds == ["sleep 1000", "sleep 999"], res
    assert str(pid) in [p[1] for p in res["Processes"]]
    res = eng.container_top(cid, "-o pid,comm")
    assert res["Titles"] == ["PID", "COMMAND"]
    assert sorted(p[1] for p in res["Processes"]) == ["sleep", "sleep"]
    with pytest.raises(InvalidParameter, match="Couldn't find PID field"):
        eng.container_top(cid, "-o comm")
    with pytest.raises(InvalidParameter, match="ps --bogus failed"):
        eng.container_top(cid, "--bogus")
    eng.container_kill(cid)
    with pytest.raises(Conflict, match="is not running"):
        eng.container_top(cid)
