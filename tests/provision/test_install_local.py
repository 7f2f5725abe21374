"""`provision host --local` run inside a lab host works as it does over SSH: under systemd,
and where systemd is not PID 1 (a PID namespace whose init is a shell), berthd started
directly as a daemon with a pid file. provision runs on the host's own python3 (3.11, like
the machine's) with its dependencies copied in from the venv."""

import json
import pathlib
import shutil
import sys

import pytest

from tests.provision.installutil import committed_tree

pytestmark = pytest.mark.lab

SRC = "/opt/berth-provision"
RUN = f"cd {SRC}/src && PYTHONPATH={SRC}/src:{SRC}/site python3 -c 'from provision.cli import main; main()'"
# `berth run --rm` exits 0 every time (set -e) and prints its output each time: three runs
RUN_OK = "set -e; for i in 1 2 3; do berth run --rm berth-probe:latest echo {word}; done"
# test-only packages of the venv that provision never imports (the rest is copied as is)
SKIP = ("ansible", "ansible_test", "pip", "setuptools", "_pytest", "pytest", "docker", "vermin", "ruff")


def install_provision(h):
    """provision's source and the venv's site-packages, copied into the host (not installed)."""
    dest = h.root_path(SRC)
    committed_tree(dest / "src", ("provision", "runtime", "templates"))
    site = pathlib.Path(next(p for p in sys.path if p.endswith("site-packages")))
    for p in site.iterdir():
        if p.name.split("-")[0] in SKIP or p.name.endswith(".pth") or p.name == "__pycache__":
            continue
        if p.is_dir():
            shutil.copytree(p, dest / "site" / p.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / "site").mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest / "site" / p.name)


def report(out, err=""):
    try:
        (rep,) = json.loads(out)
    except ValueError:
        raise AssertionError(f"no JSON report:\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}") from None
    return rep, {s["name"]: s for s in rep["steps"]}


@pytest.fixture
def nested_host(plab):
    """One fresh nested host, removed when the test ends."""
    (h,) = plab.up(1, nested=True)
    yield h
    plab.stop([h])


def test_local_under_systemd_and_without_it(plab, nested_host):
    h = nested_host
    install_provision(h)
    p = h.ssh(f"{RUN} host --local --user tester --json", check=False, timeout=300)
    rep, steps = report(p.stdout, p.stderr)
    assert p.returncode == 0, json.dumps(rep, indent=1)[-3000:] + p.stderr[-2000:]
    assert rep["target"] == "localhost" and steps["berthd service"]["status"] == "changed"
    assert "container ran and exited 0" in " ".join(steps["engine verify"]["notes"])
    assert h.exec("systemctl is-active berthd").stdout.strip() == "active"
    assert h.ssh(RUN_OK.format(word="ok"), user="tester").stdout.split() == ["ok"] * 3
    p = h.ssh(f"{RUN} host --local --user tester --json", check=False, timeout=300)
    rep, steps = report(p.stdout, p.stderr)
    assert p.returncode == 0 and rep["changed"] == 0, [s for s in steps.values() if s["status"] != "ok"]
    p = h.ssh(f"{RUN} uninstall --local --purge", check=False, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert h.exec("systemctl is-active berthd", check=False).stdout.strip() != "active"

    # no systemd as PID 1: berthd runs directly with a pid file; the run, a rerun (0 changed)
    # and a container all happen inside that PID namespace (its processes end with it)
    script = (
        f"{RUN} host --local --json > /tmp/first.json; echo rc1=$?; "
        f"{RUN} host --local --json > /tmp/second.json; echo rc2=$?; "
        f"{RUN} status --local --json > /tmp/status.json; echo rc3=$?; "
        "cat /proc/1/comm; cat /run/berthd.pid; " + RUN_OK.format(word="ok-direct")
    )
    p = h.exec(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script], check=False, timeout=300)
    first, steps = report(h.exec("cat /tmp/first.json").stdout, p.stdout + p.stderr)
    assert "rc1=0" in p.stdout, json.dumps(first, indent=1)[-3000:]
    assert "systemd is not PID 1 here (PID 1 is sh)" in " ".join(steps["berthd service"]["notes"])
    assert "berthd unit" not in steps
    assert "container ran and exited 0" in " ".join(steps["engine verify"]["notes"])
    second, _ = report(h.exec("cat /tmp/second.json").stdout, p.stdout + p.stderr)
    assert "rc2=0" in p.stdout and second["changed"] == 0, second
    assert p.stdout.rstrip().endswith("ok-direct\nok-direct\nok-direct"), p.stdout + p.stderr
    (status,) = json.loads(h.exec("cat /tmp/status.json").stdout)
    assert "rc3=0" in p.stdout and status["active"] == "active-direct", status
