"""Small helpers over the machine: running commands, mounts, processes."""

import os
import pathlib
import subprocess


class LabError(RuntimeError):
    """A lab operation failed; the message names what and what to do."""


def run(cmd, input=None, check=True, timeout=None) -> subprocess.CompletedProcess:
    """Run a command, text in/out; on failure raise LabError carrying its stderr."""
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def mounts_under(path) -> list:
    """Mount points at or below `path` in this mount namespace, deepest first."""
    prefix = str(pathlib.Path(path))
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def unmount_under(path) -> None:
    """Lazily unmount everything mounted at or below `path`."""
    for mp in mounts_under(path):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def proc_start_time(pid: int):
    """The start time (clock ticks since boot) of `pid`, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rsplit(")", 1)[1].split()[19])


def alive(pid: int, start_time) -> bool:
    """True if `pid` still runs and is the very process recorded (same start time)."""
    st = proc_start_time(pid)
    return st is not None and st == start_time and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def children(pid: int) -> list:
    """PIDs whose parent is `pid`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out
