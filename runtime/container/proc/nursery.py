"""A spare PID 1's cgroup, made and entered before its container exists (cgroup v1 only).

Why: on cgroup v1 the first move of a process into a cgroup after ~20 ms without one waits
for an RCU grace period (the kernel's cgroup threadgroup lock; 6-12 ms measured here on 6.18,
docs/containers.md), holding the cgroup mutex all the while, and it did so on every start,
after PID 1 had its filesystem ready. The forkserver's spare (the next container's monitor and
its PID 1, forked ahead of the request) now makes cgroups of its own, `<parent>/spare-<monitor
pid>` in each default hierarchy, before it forks PID 1, and PID 1 enters them while it waits
for a request; the start renames those directories to the container's: v1 lets a cgroup
directory be renamed under the same parent, which takes the cgroup mutex but not the
threadgroup lock, so no grace period is waited for on the start path.

PID 1 enters by writing "0" into each `tasks` file (CgroupV1.join_files, in
init.prepared_main): that moves one thread, the caller, and the kernel (5.5 and later) then
skips the threadgroup lock and its grace period: ~0.1 ms a hierarchy instead of 6-12 ms during
which any other cgroup operation (the rename of the container being started, the removal of the
one that exited) waited for the mutex. PID 1 is single-threaded (a fork of the single-threaded
forkserver's child), so its one thread is the whole process. Older kernels (3.10, 4.18) take
the same lock either way.

A start the spare cannot serve this way (other controllers, another parent, other device
rules, a PID 1 that could not enter, a rename the kernel refuses) moves PID 1 as before and
removes the spare's directories. cgroup v2 has no rename (there, CLONE_INTO_CGROUP would be the
way; not done). An unused spare removes its directories once its PID 1 is gone; what a killed
spare leaves is swept when the engine starts (sweep)."""

import errno
import os

from runtime import TYPE_CHECKING
from runtime.container.proc import cgroups, devices

if TYPE_CHECKING:
    from typing import List, Optional  # noqa: F401

PREFIX = "spare-"


def make(parent):
    # type: (str) -> Optional[cgroups.CgroupV1]
    """Make `<parent>/spare-<our pid>` in each default v1 hierarchy, with the default device
    rules, for the PID 1 about to be forked to enter by itself. None where it cannot be done (v2,
    no permission...): nothing is left behind then."""
    if not parent or cgroups.detect_version() != 1:
        return None
    cg = cgroups.CgroupV1(parent, PREFIX + str(os.getpid()))
    try:
        cg.make_dirs()
        # before PID 1 enters: rules rewritten while PID 1 builds its root would deny it,
        # between the "deny all" and the allow lines, the devices it opens (/dev/ptmx, /dev/null)
        devices.apply(cg, {"rules": list(cgroups.DEVICE_RULES)})
    except OSError:
        release(cg)
        return None
    return cg


def fits(cgroup, device_rules, parent):
    # type: (dict, Optional[List[str]], Optional[str]) -> bool
    """Whether a container can have a spare's cgroup at start, decided the same way by the
    engine (no kick then) and the monitor (a rename instead of a move). cgroup: the container's
    record (parent, name, version, extra); device_rules: its allow list (None: privileged);
    parent: where the spares wait (None: no spares). It fits with cgroup v1, that parent, no
    optional controllers and the default device rules, which the spare's cgroup has (other
    rules would be written while PID 1 is in it already)."""
    return bool(parent) and cgroup.get("version") == 1 and not cgroup.get("extra") and \
        cgroup["parent"].strip("/") == parent.strip("/") and \
        list(device_rules or ()) == list(cgroups.DEVICE_RULES)


def adopt(spare, target):
    # type: (cgroups.CgroupV1, cgroups.CgroupV1) -> bool
    """Rename the spare's directories to target's (a container that fits(); its empty
    directories made at create are removed first). True when every one was renamed: PID 1 is
    then in target's cgroup without a move, under the default device rules. False: the caller
    moves PID 1 and calls release(spare)."""
    for ctl in sorted(spare.paths):
        old, new = spare.paths[ctl], target.paths[ctl]
        if not os.path.isdir(old):
            continue  # co-mounted with one renamed already (cpu,cpuacct)
        try:
            os.rmdir(new)
        except OSError as e:
            if e.errno != errno.ENOENT:
                return False
        try:
            os.rename(old, new)
        except OSError:
            return False
    return True


def release(spare):
    # type: (Optional[cgroups.CgroupV1]) -> None
    """Remove the spare's directories (its PID 1 gone or moved out); best effort."""
    if spare is not None:
        spare.remove_empty()


def sweep(parent):
    # type: (str) -> None
    """Remove the empty spare directories under parent that a killed spare left (v1); the
    ones still in use (EBUSY) stay."""
    if cgroups.detect_version() != 1:
        return
    for mnt in sorted(set(cgroups.v1_mounts().values())):
        base = mnt + "/" + parent.strip("/")
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if name.startswith(PREFIX) and name[len(PREFIX):].isdigit():
                try:
                    os.rmdir(os.path.join(base, name))
                except OSError:
                    pass
