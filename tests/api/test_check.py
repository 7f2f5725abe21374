"""The data root's checker through a running berthd: `GET /berth/check` and `berth system check`
(read-only), `berthd --check-store --repair` refused while berthd serves the data root, and the
cheap check at start logged with what it repaired."""

import json
import os
import subprocess
import sys
import time

from tests.api.conftest import ROOT


def _check_store(d, *extra):
    return subprocess.run([sys.executable, "-m", "runtime.daemon.main"] + d.argv()[3:] +
                          ["--check-store"] + list(extra), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          universal_newlines=True)


def test_check_through_the_api_is_read_only(loaded):
    d = loaded
    status, _, body = d.api("GET", "/berth/check")
    assert status == 200, body
    assert json.loads(body) == {"Findings": [], "Problems": 0, "Partial": 0}
    out = d.berth("system", "check")
    assert out.returncode == 0 and b"0 problem(s)" in out.stdout, out

    half = os.path.join(d.data_root, "volumes", "halfvol")
    os.makedirs(os.path.join(half, "_data"))
    try:
        report = json.loads(d.api("GET", "/v1.43/berth/check?quick=1")[2])
        assert report["Partial"] == 1 and report["Problems"] == 0, report
        (f,) = report["Findings"]
        assert f["Area"] == "volume" and f["Subject"] == "halfvol" and f["Repair"] == "safe"
        assert os.path.isdir(half)  # read-only
        out = d.berth("system", "check", "--quick")
        assert out.returncode == 0 and b"volume halfvol: directory" in out.stdout, out
        out = _check_store(d, "--repair")
        assert out.returncode == 1 and "stop it before --repair" in out.stderr, out
        assert out.stderr.count("\n") == 1 and os.path.isdir(half)
        out = _check_store(d)  # a read-only check may run beside it
        assert "halfvol" in out.stdout and out.returncode == 1, out

        d.kill()
        d.start()  # the cheap check at start removes what was never complete
        assert not os.path.exists(half)
        assert "data root check: volume halfvol" in d.log()
        assert json.loads(d.api("GET", "/berth/check")[2])["Findings"] == []
    finally:
        if os.path.isdir(half):
            os.rmdir(os.path.join(half, "_data"))
            os.rmdir(half)


def test_a_full_disk_while_logging_still_records_the_exit(tmp_path, busybox_tar):
    """A container fills the data root with its output: the log lines that do not fit are
    dropped, the monitor lives on and records the exit code, berthd keeps serving."""
    from tests.api.conftest import Berthd
    d = Berthd(str(tmp_path / "logfull"))
    os.makedirs(d.data_root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", d.data_root], check=True)
    try:
        d.start()
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        out = d.berth("run", "-d", "--name", "spam", "busybox", "sh", "-c",
                      "i=0; while [ $i -lt 300000 ]; do echo line-$i-%s; i=$((i+1)); done; "
                      "exit 7" % ("x" * 40))
        assert out.returncode == 0, out.stderr
        for _ in range(240):
            state = json.loads(d.api("GET", "/containers/spam/json")[2])["State"]
            if not state["Running"]:
                break
            time.sleep(0.5)
        assert state["ExitCode"] == 7 and state["Error"] == "", state
        statvfs = os.statvfs(d.data_root)
        assert statvfs.f_bavail * statvfs.f_frsize < 1 << 20  # it was full indeed
        status, _, body = d.api("GET", "/containers/spam/logs?stdout=1&tail=1")
        assert status == 200 and b"line-" in body
        assert json.loads(d.api("GET", "/berth/check")[2])["Findings"] == []
        assert d.api("DELETE", "/containers/spam")[0] == 204
    finally:
        d.cleanup()
        subprocess.run(["umount", "-l", d.data_root], stderr=subprocess.DEVNULL)
