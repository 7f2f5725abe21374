"""The engine bundle: reproducible, versioned, and runnable by the target's own python3 (a real
CPython 3.6, as on CentOS 7), both as the shipped zipapp and as the installed tree."""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

from provision import bundle

PY36 = "/root/.pyenv/versions/3.6.15/bin/python3.6"


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def built():
    return bundle.build()


def test_build_is_reproducible_and_carries_its_version(built):
    again = bundle.build()
    assert again.data == built.data and again.sha256 == built.sha256
    assert built.version == bundle.runtime_version()
    with zipfile.ZipFile(__import__("io").BytesIO(built.data)) as z:
        names = z.namelist()
        assert json.loads(z.read(bundle.MARKER)) == {"version": built.version}
    assert "__main__.py" in names and "runtime/daemon/main.py" in names and "runtime/cli/main.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert built.install_dir == f"/usr/local/lib/berth/{built.version}-{built.sha256[:12]}"


@pytest.mark.skipif(not os.path.exists(PY36), reason="needs the pyenv Python 3.6.15")
def test_zipapp_runs_under_python36(built, tmp_path):
    pyz = tmp_path / built.filename
    pyz.write_bytes(built.data)
    p = run([PY36, str(pyz), "berth", "version"])
    assert f"Version:           {built.version}" in p.stdout, p.stdout + p.stderr
    assert "Python version:    3.6.15" in p.stdout
    p = run([PY36, str(pyz), "berthd", "--version"])
    assert p.returncode == 0 and p.stdout.strip() == f"berthd version {built.version}", p.stderr
    # named berthd (a symlink), the zipapp dispatches on argv[0]
    link = tmp_path / "berthd"
    link.symlink_to(pyz)
    p = run([PY36, str(link), "--version"])
    assert p.stdout.strip() == f"berthd version {built.version}", p.stderr


@pytest.mark.skipif(not os.path.exists(PY36), reason="needs the pyenv Python 3.6.15")
def test_version_override_and_installed_tree_under_python36(tmp_path):
    old = bundle.build(version="0.0.9")
    assert old.version == "0.0.9" and old.filename == "berth-0.0.9.pyz"
    pyz = tmp_path / old.filename
    pyz.write_bytes(old.data)
    tree = tmp_path / "tree"
    assert run([PY36, "-m", "zipfile", "-e", str(pyz), str(tree)]).returncode == 0
    assert run([PY36, "-m", "compileall", "-q", str(tree)]).returncode == 0
    p = run([PY36, "-s", str(tree), "berth", "version"])
    assert "Version:           0.0.9" in p.stdout, p.stderr
    # the shell wrappers as installed on targets, pointed at this tree
    for prog in ("berthd", "berth"):
        script = bundle.wrapper(prog).decode().replace(bundle.PYTHON, PY36)
        script = script.replace(f"{bundle.LIB_DIR}/current", str(tree))
        w = tmp_path / f"{prog}-wrapper"
        w.write_text(script)
        w.chmod(0o755)
    assert run([str(tmp_path / "berthd-wrapper"), "--version"]).stdout.strip() == "berthd version 0.0.9"
    p = run([str(tmp_path / "berth-wrapper"), "version"], env=dict(os.environ, PYTHONPATH="/nonexistent"))
    assert "Version:           0.0.9" in p.stdout, p.stderr
    p = run([str(tmp_path / "berth-wrapper"), "--help"])
    assert p.stdout.startswith("\nUsage:  berth ") or "Usage:  berth" in p.stdout, p.stdout


def test_bad_version_is_refused():
    with pytest.raises(bundle.InputError, match="bad engine version"):
        bundle.build(version="1.0; rm -rf /")


def test_provision_bundle_command_writes_the_file(tmp_path):
    from tests.provision.labutil import provision

    p = provision("bundle", "--out", tmp_path, "--version", "0.0.8")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "berth-0.0.8.pyz"
    assert out.exists() and str(out) in p.stdout
    if shutil.which("python3"):
        r = run(["python3", str(out), "berth", "version"])
        assert "Version:           0.0.8" in r.stdout


HOLD_LOCK_THEN_INSTALL = """
import fcntl, os, subprocess, sys, time
subprocess.check_call(["mount", "-t", "tmpfs", "berth-test-run", "/run"])  # this namespace's /run
os.makedirs("/run/lock")
held = open("/run/lock/berth-engine-install.lock", "w")
fcntl.flock(held, fcntl.LOCK_EX)  # an install left running by a killed run
p = subprocess.Popen(["sh", "-c", sys.argv[1]])
time.sleep(1.5)
waited = p.poll() is None and not os.path.exists(sys.argv[2])
held.close()
print(waited, p.wait(60))
"""


def test_install_waits_for_an_install_still_running(built, tmp_path):
    """A run killed on the controller leaves its install script running on the host: the
    rerun's waits for it (a lock) rather than building and renaming the same directories."""
    lib = tmp_path / "lib"
    staged = tmp_path / "staged.pyz"
    staged.write_bytes(built.data)
    script = bundle.install_script(built, str(staged)).replace(bundle.LIB_DIR, str(lib))
    script = script.replace(bundle.PYTHON, sys.executable)
    installed = built.install_dir.replace(bundle.LIB_DIR, str(lib))
    p = run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
             HOLD_LOCK_THEN_INSTALL, script, installed])
    assert p.stdout.split() == ["True", "0"], (p.stdout, p.stderr)
    assert (lib / "current" / "runtime" / "daemon" / "main.py").is_file()
    assert json.loads((lib / "current" / "BERTH_INSTALLED").read_text()) == built.marker


def test_install_removes_bundles_left_by_killed_runs(built, tmp_path):
    """A run killed between its upload and the install leaves the staged bundle in /tmp: the
    next install removes those older than half an hour, never a fresh one (an upload of a
    concurrent run still on its way)."""
    up = tmp_path / "up"
    up.mkdir()
    old, fresh, other = up / ".berth-bundle-aaaa", up / ".berth-bundle-bbbb", up / ".berth-notes-cccc"
    for f in (old, fresh, other):
        f.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(str(old), (an_hour_ago, an_hour_ago))
    os.utime(str(other), (an_hour_ago, an_hour_ago))
    lib = tmp_path / "lib"
    staged = up / ".berth-bundle-this"
    staged.write_bytes(built.data)
    script = bundle.install_script(built, str(staged), stale_uploads=str(up / ".berth-bundle-*"))
    script = script.replace(bundle.LIB_DIR, str(lib)).replace(bundle.PYTHON, sys.executable)
    p = run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs berth-test-run /run && exec sh -c "$0"', script])
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in up.iterdir()) == [fresh.name, other.name]
    assert (lib / "current" / "BERTH_INSTALLED").is_file()
