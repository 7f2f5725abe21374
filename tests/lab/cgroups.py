"""Per-host cgroups on the machine, in every mounted hierarchy.

nspawn --keep-unit puts its payload under the cgroup it was started in, so each host starts
from its own cgroup `berth-lab-<lab>/<host>` in every hierarchy (v1 controllers, name=systemd
and the cgroup2 mount); otherwise hosts would collide.
"""

import os
import pathlib
import shlex
import time

CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")


def hierarchies() -> list:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy on the machine."""
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mp, fstype = line.split()[:3]
            if fstype in ("cgroup", "cgroup2") and mp.startswith(str(CGROUP_ROOT)):
                found.append(pathlib.Path(mp))
    return found


def lab_root(lab_id: str) -> str:
    """The lab's cgroup path, relative to each hierarchy root."""
    return f"berth-lab-{lab_id}"


def create(rel: str) -> list:
    """Create `rel` in every hierarchy (cpuset.cpus/mems copied down); return the dirs."""
    dirs = []
    for h in hierarchies():
        d = h
        for part in pathlib.Path(rel).parts:
            parent, d = d, d / part
            if not d.is_dir():
                d.mkdir(exist_ok=True)
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (d / knob).exists() and not (d / knob).read_text().strip():
                    (d / knob).write_text((parent / knob).read_text())
        dirs.append(d)
    return dirs


def enter_script(rel: str) -> str:
    """Shell text that moves the running shell ($$) into `rel` in every hierarchy."""
    procs = [shlex.quote(str(h / rel / "cgroup.procs")) for h in hierarchies()]
    return "".join(f"echo $$ > {p} && " for p in procs)


def pids(rel: str) -> list:
    """Every PID in `rel` or below, in any hierarchy."""
    found = set()
    for h in hierarchies():
        top = h / rel
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    found.update(int(x) for x in (pathlib.Path(dirpath) / "cgroup.procs").read_text().split())
                except OSError:
                    pass
    return sorted(found)


def remove(rel: str, timeout: float = 10.0) -> list:
    """Remove `rel` and everything below it in every hierarchy; return dirs that would not go."""
    deadline = time.monotonic() + timeout
    left = []
    for h in hierarchies():
        top = h / rel
        while top.is_dir():
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
            if not top.is_dir() or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if top.is_dir():
            left.append(str(top))
    return left
