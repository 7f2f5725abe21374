"""Container operations the kernel refuses: a typed error with a clear message, and nothing
left half-done."""

import os
import subprocess

import pytest

from runtime.container.proc import cgroups
from runtime.errors import SystemFailure


def test_pause_with_a_freezer_that_never_settles(clean_containers):
    """The freezer's state file reads empty (/dev/null bound over it, as a freezer stuck in
    FREEZING never reports FROZEN): pause fails with dockerd's 500 kind and message, the
    freeze is undone, and the container runs on."""
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox", "Cmd": ["sleep", "60"]})["Id"]
    eng.container_start(cid)
    cg = eng.containers.get(cid).cgroup()
    if cgroups.detect_version() == 2:
        state = cg.path + "/cgroup.events"
        settled = lambda: "frozen 0" in open(cg.path + "/cgroup.events").read()  # noqa: E731
    else:
        state = cg.paths["freezer"] + "/freezer.state"
        settled = lambda: open(state).read().strip() == "THAWED"  # noqa: E731
    subprocess.run(["mount", "--bind", "/dev/null", state], check=True)
    try:
        with pytest.raises(SystemFailure) as e:
            eng.container_pause(cid)
        msg = str(e.value)
        assert msg.startswith("Cannot pause container %s: " % cid) and "left running" in msg, msg
        assert "\n" not in msg
    finally:
        subprocess.run(["umount", state], check=True)
    assert settled()
    st = eng.container_inspect(cid)["State"]
    assert st["Running"] and not st["Paused"]
    assert os.path.exists("/proc/%d" % st["Pid"])
    eng.container_pause(cid)  # the real freezer works again
    assert eng.container_inspect(cid)["State"]["Paused"]
    eng.container_unpause(cid)
    eng.container_remove(cid, force=True)
