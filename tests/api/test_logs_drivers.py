"""Log drivers and rotation through the clients: `docker run --log-opt ...` and `berth run
--log-driver/--log-opt`, `docker logs --tail` across rotated files, a driver we do not have
refused by name in one line."""

import json
import os

import pytest

pytestmark = pytest.mark.timeout(180)

LINES = "awk 'BEGIN { for (i = 0; i < 250000; i++) printf \"%08d " + "x" * 140 + "\\n\", i }'"


def _log_bytes(d, cid):
    root = os.path.join(d.data_root, "containers", cid)
    return sum(os.path.getsize(os.path.join(b, n))
               for b, _, names in os.walk(root) for n in names if "log" in n)


def test_docker_run_50mb_with_rotation_keeps_3mb_and_tail_works(loaded):
    d = loaded
    out = d.docker("run", "-d", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "busybox",
                   "sh", "-c", LINES)
    assert out.returncode == 0, out.stderr
    cid = out.stdout.decode().strip()
    assert d.docker("wait", cid, timeout=120).stdout.decode().strip() == "0"
    assert _log_bytes(d, cid) <= 3 * 1024 * 1024
    tail = d.docker("logs", "--tail", "10", cid).stdout.decode().splitlines()
    assert [int(line.split()[0]) for line in tail] == list(range(249990, 250000))
    out = d.berth("logs", "-n", "2", cid)
    assert [int(line.split()[0]) for line in out.stdout.decode().splitlines()] == [249998, 249999]
    assert d.docker("rm", cid).returncode == 0


def test_local_and_none_drivers_through_berth(loaded):
    d = loaded
    out = d.berth("run", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=1m", "busybox",
                  "sh", "-c", "echo one; echo two")
    assert out.returncode == 0 and out.stdout == b"one\ntwo\n", out.stderr
    assert d.docker("logs", "loc").stdout == b"one\ntwo\n"
    info = json.loads(d.api("GET", "/containers/loc/json")[2])
    assert info["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {"max-size": "1m"}}
    out = d.berth("run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "shown")
    assert out.returncode == 0 and out.stdout == b"shown\n"
    out = d.docker("logs", "quiet")
    assert out.returncode != 0 and "does not support reading" in out.stderr.decode()
    assert d.berth("rm", "loc", "quiet").returncode == 0


@pytest.mark.parametrize("client, argv, message", [
    ("docker", ["--log-driver", "syslog"], "no log driver named 'syslog' is registered"),
    ("berth", ["--log-driver", "gelf"], "no log driver named 'gelf' is registered"),
    ("berth", ["--log-opt", "max-bytes=1m"], "unknown log opt 'max-bytes'"),
    ("berth", ["--log-opt", "max-size"], "invalid log opt 'max-size'"),
])
def test_bad_log_flags_are_refused_in_one_line(loaded, client, argv, message):
    d = loaded
    before = d.api("GET", "/containers/json?all=1")[2]
    out = getattr(d, client)("run", "-d", *(argv + ["busybox", "true"]))
    err = out.stderr.decode()
    assert out.returncode == 125 and message in err.splitlines()[0], err
    assert d.api("GET", "/containers/json?all=1")[2] == before
