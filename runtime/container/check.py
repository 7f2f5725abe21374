"""The containers' checker: each `<data-root>/containers/<id>/` against its record
(config.v2.json), the image store and the volumes: a record, the root its driver needs (overlay2:
upper/ and work/; vfs: rootfs/), its image and layer dirs, its named volumes, and its state (a
PID 1 whose monitor is gone). A directory without a record is a create that never finished
(invisible to the engine): removing it is the safe fix. Nothing complete is removed here."""

import os
import shutil

from runtime import TYPE_CHECKING
from runtime.container.state import Container, proc_start_time
from runtime.findings import MANUAL, NONE, SAFE, Finding

if TYPE_CHECKING:
    from typing import Any, Callable, List  # noqa: F401


def _remove(path):
    return lambda: shutil.rmtree(path)


def check(root, image_exists, volume_exists):
    # type: (str, Callable[[str], bool], Callable[[str], bool]) -> List[Finding]
    """Findings for the containers under root; image_exists(id) and volume_exists(name) answer
    for the image store and the volumes."""
    found = []  # type: List[Finding]
    if not os.path.isdir(root):
        return found
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if entry.startswith("."):
            if entry.startswith(".removing-"):
                found.append(Finding("container", path, "a removal that did not finish",
                                     "berthd deletes it at start", SAFE, _remove(path)))
            continue
        if not os.path.isdir(path):
            continue
        if not os.path.exists(os.path.join(path, "config.v2.json")):
            found.append(Finding("container", entry[:12], "directory %s has no config.v2.json (a "
                                 "create that did not finish)" % path, "remove the directory",
                                 SAFE, _remove(path), partial=True))
            continue
        try:
            c = Container.load(path)
        except (OSError, ValueError) as e:
            found.append(Finding("container", entry[:12], "config.v2.json is unreadable (%s)" % e,
                                 "remove the directory %s by hand" % path))
            continue
        found.extend(_one(c, image_exists, volume_exists))
    return found


def _one(c, image_exists, volume_exists):
    # type: (Container, Callable[[str], bool], Callable[[str], bool]) -> List[Finding]
    out = []  # type: List[Finding]
    cid = c.id[:12]
    rm = "remove the container (`berth rm -f %s`)" % cid

    def add(problem, fix=rm, repair=MANUAL):
        out.append(Finding("container", cid, problem, fix, repair))

    if not image_exists(c.cfg.get("ImageID", "")):
        add("its image %s is missing" % c.cfg.get("ImageID"))
    dirs = ("rootfs",) if c.cfg.get("Driver") == "vfs" else ("upper", "work")
    for d in dirs:
        if not os.path.isdir(c.file(d)):
            add("its %s/ directory is missing" % d)
    if c.cfg.get("Driver") != "vfs":
        for d in c.cfg.get("LayerDirs") or ():
            if not os.path.isdir(d):
                add("its image layer %s is missing" % d)
                break
    for m in c.cfg.get("Mounts") or ():
        if m.get("Type") == "volume" and m.get("Name") and not volume_exists(m["Name"]):
            add("its volume %s is missing" % m["Name"], "create the volume again (`berth volume "
                "create %s`) or %s" % (m["Name"], rm[0].lower() + rm[1:]))
    st = c.started()
    if st.get("Pid") and not os.path.exists(c.file("exit.json")):
        running = c.alive_pid()
        mon = st.get("MonitorPid") or 0
        mon_alive = mon and proc_start_time(mon) == st.get("MonitorStart")
        if running and not mon_alive:
            add("PID 1 (%d) runs but its monitor is gone: its exit will not be recorded" % running,
                "stop it (`berth rm -f %s`)" % cid)
        elif not running and not mon_alive:
            out.append(Finding("container", cid, "its monitor died without recording PID 1's exit",
                               "nothing to do: it is shown exited (255) with that reason", NONE))
    return out
