"""The berth side of bench/container_start.py, as a process of its own so that it runs on any
python the engine supports (CentOS 7's 3.6 included): stdlib and runtime/ only.

    python engine_loop.py DATA_ROOT CGROUP_PARENT ARCHIVE [HOSTCONFIG_JSON]

reads one command a line on stdin and answers one JSON line on stdout:
`once` (create + start + wait + rm of `true`: the phases' seconds), `pss` (the PSS of the
monitors of 5 running containers, and the forkserver's), `close` (removes everything, exits).
"""

import json
import os
import statistics
import sys
import time

# the tree whose runtime/ runs: this checkout, or another one for an A/B run
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("BERTH_TREE") or HERE)

from runtime.engine import Engine  # noqa: E402


def pss_kb(pid):
    """Pss of a process, in kB."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def once(eng, host_config):
    """One create + start + wait + rm; {phase: seconds, "cpu": this process's CPU seconds}."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config})["Id"]
    t1 = time.perf_counter()
    eng.container_start(cid)
    t2 = time.perf_counter()
    code = eng.container_wait(cid)["StatusCode"]
    t3 = time.perf_counter()
    eng.container_remove(cid)
    t4 = time.perf_counter()
    if code != 0:
        raise SystemExit("`true` exited %d" % code)
    return {"total": t4 - t0, "create": t1 - t0, "start": t2 - t1, "wait": t3 - t2, "rm": t4 - t3,
            "cpu": time.process_time() - c0}


def monitor_pss(eng, n=5):
    """PSS (kB) of the monitors of n running containers, with and without the forkserver."""
    ids = []
    for _ in range(n):
        cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "1000"],
                                    "HostConfig": {"NetworkMode": "none"}})["Id"]
        eng.container_start(cid)
        ids.append(cid)
    time.sleep(0.3)
    mons = [eng.containers.get(c).started()["MonitorPid"] for c in ids]
    out = {"median": statistics.median(pss_kb(p) for p in mons), "first": pss_kb(mons[0]),
           "forkserver": pss_kb(eng.spawner._proc.pid)}
    eng.close()  # the forkserver goes; the monitors now share pages only with each other
    time.sleep(0.2)
    out["without_engine"] = statistics.median(pss_kb(p) for p in mons)
    for c in ids:
        eng.container_remove(c, force=True)
    return out


def main():
    data_root, parent, archive = sys.argv[1:4]
    host_config = dict({"NetworkMode": "none"}, **json.loads(sys.argv[4] if len(sys.argv) > 4 else "{}"))
    os.makedirs(data_root)
    eng = Engine(data_root=data_root, config={"bridge": "none", "cgroup-parent": parent})
    with open(archive, "rb") as f:
        eng.image_load(f)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "once":
            out.write(json.dumps(once(eng, host_config)) + "\n")
        elif cmd == "pss":
            out.write(json.dumps(monitor_pss(eng)) + "\n")
        elif cmd == "close":
            for c in eng.container_list(all=True):
                eng.container_remove(c["Id"], force=True)
            eng.close()
            out.write("{}\n")
            out.flush()
            return
        out.flush()


if __name__ == "__main__":
    main()
