"""Exec records do not pile up: a container's execs of an earlier run go when it starts again
(their ids answer 404, as dockerd's), and a long run keeps at most KEEP_ENDED ended ones (a
health check or a monitoring agent execs every few seconds for months)."""

import json
import os

import pytest

from runtime.atomicfile import write_json
from runtime.container import execs as execsmod

pytestmark = pytest.mark.timeout(120)


def test_a_restart_forgets_the_earlier_runs_execs(loaded):
    r = loaded.berth("run", "-d", "--name", "execs-restart", "busybox", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    status, _, body = loaded.api("POST", "/containers/%s/exec" % cid, {"Cmd": ["true"]})
    assert status == 201, body
    exec_id = json.loads(body)["Id"]
    assert loaded.api("POST", "/exec/%s/start" % exec_id, {"Detach": True})[0] == 200
    assert loaded.api("GET", "/exec/%s/json" % exec_id)[0] == 200
    assert loaded.berth("restart", "-t", "0", "execs-restart").returncode == 0
    assert loaded.api("GET", "/exec/%s/json" % exec_id)[0] == 404
    exec_dir = os.path.join(loaded.data_root, "containers", cid, "exec")
    assert not os.listdir(exec_dir)
    assert loaded.berth("rm", "-f", "execs-restart").returncode == 0


class _Container(object):
    """The two things Execs asks of a container here: its id and its files (a fake below the
    line this test is about: which records are kept)."""

    id = "c" * 64

    def __init__(self, d):
        self.d = d

    def file(self, name):
        return os.path.join(self.d, name)

    def state(self):
        return {"Running": True, "Paused": False}


class _Index(object):
    def __init__(self, c):
        self.c = c

    def get(self, ref):
        return self.c

    def all(self):
        return [self.c]


def test_a_long_run_keeps_the_newest_ended_execs_and_every_running_one(tmp_path):
    c = _Container(str(tmp_path))
    ex = execsmod.Execs(_Index(c), spawner=None)
    made = []
    for i in range(2 * execsmod.KEEP_ENDED + 10):
        exec_id = ex.create("x", {"Cmd": ["true"]})
        os.utime(os.path.join(c.file("exec"), exec_id + ".config.json"), (1000 + i, 1000 + i))
        res = {"ExitCode": 0, "Running": False, "Pid": 0}
        if i == 0:  # the very first is still running (this test's own process stands in for it)
            res = {"ExitCode": None, "Running": True, "Pid": os.getpid()}
        write_json(os.path.join(c.file("exec"), exec_id + ".json"), res)
        made.append(exec_id)
    kept = set(ex.ids(c))
    assert made[0] in kept  # running: never trimmed
    assert made[-1] in kept and made[-execsmod.KEEP_ENDED // 2] in kept  # the newest stay
    assert made[1] not in kept  # the oldest ended ones went
    assert len(kept) <= execsmod.KEEP_ENDED + 2
    with pytest.raises(Exception, match="No such exec instance"):
        ex.inspect(made[1])
    ex.forget(c)
    assert ex.ids(c) == [] and not os.listdir(c.file("exec"))
