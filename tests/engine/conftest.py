"""Fixtures shared by the engine tests (images, containers, volumes): a real Engine on ext4 and
real images built by tests/imagefactory.py."""

import os

import pytest

from runtime.engine import Engine
from tests import imagefactory


#: The cgroup parent of every engine a test makes without naming one: this pytest process's own,
#: removed when its session ends (tests/conftest.py). The engine's default, /berth, belongs to an
#: installed engine: the suite once left it (empty) in each of the machine's hierarchies.
SESSION_CGROUP_PARENT = "berth-test-session-%d" % os.getpid()


def make_engine(data_root, config=None):
    """A runtime.engine.Engine over data_root (must be on ext4/xfs, not overlay: /tmp is ext4)."""
    os.makedirs(data_root, exist_ok=True)
    config = dict(config or {})
    config.setdefault("bridge", "none")  # these engines run in the machine's own network namespace
    config.setdefault("cgroup-parent", SESSION_CGROUP_PARENT)
    return Engine(data_root=str(data_root), config=config)


def remove_session_cgroup_parent():
    """Remove SESSION_CGROUP_PARENT's directories (empty by then: each container's cgroup goes
    with it); one left busy is reported, not raised."""
    for d in _cgroup_dirs(SESSION_CGROUP_PARENT):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError as e:
            print("cgroup parent %s left: %s" % (d, e))


@pytest.fixture
def engine(tmp_path):
    """A fresh engine whose data root is under this test's tmp dir; closed after the test, so its
    forkserver and the spare waiting in a cgroup under the session's parent go with it (left to
    the process's exit, they outlived the session's end and kept the parent from removal)."""
    eng = make_engine(tmp_path / "root")
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    """Path of a docker-save tarball holding busybox:latest (busybox-static, CMD ["sh"])."""
    return imagefactory.busybox_image_tar(tmp_path_factory.mktemp("images") / "busybox.tar")


@pytest.fixture
def busybox_image(engine, busybox_tar):
    """Load busybox:latest into the engine; returns the reference "busybox:latest"."""
    with open(busybox_tar, "rb") as f:
        engine.image_load(f)
    return "busybox:latest"


# ---------------------------------------------------------------- containers and volumes

def _cgroup_dirs(parent):
    """Every directory of the cgroup parent in the v1 hierarchies (or the v2 one)."""
    from runtime.container.proc import cgroups
    if cgroups.detect_version() == 2:
        return ["/sys/fs/cgroup/" + parent]
    return sorted({m + "/" + parent for m in cgroups.v1_mounts().values()})


def _processes_under(path):
    """Pids whose cwd is under path (monitors chdir into their container's state dir)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink("/proc/%s/cwd" % pid).startswith(path):
                    out.append(int(pid))
            except OSError:
                pass
    return out


def remove_all_containers(eng):
    from runtime.errors import Conflict, NotFound
    for c in eng.container_list(all=True):
        try:
            eng.container_remove(c["Id"], force=True, volumes=True)
        except (Conflict, NotFound):  # an AutoRemove container the engine is removing already
            assert eng.containers.wait_gone(c["Id"], 10)


def _spare_cgroups(eng):
    """The names a cgroup of the engine's spare PID 1 may have (runtime/container/proc/nursery.py),
    part of the engine as its forkserver is: spare-<pid of a child of the forkserver>."""
    server, out = eng.spawner.pid, set()
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        if pid.isdigit() and int(stat[stat.rfind(")") + 2:].split()[1]) == server:
            out.add("spare-" + pid)
    return out


def assert_nothing_leaked(eng, data_root, cgroup_parent):
    """No container, cgroup, monitor process or mount is left by the test."""
    assert eng.container_list(all=True) == []
    import time

    def cgroups_left():
        found = [(d, e) for d in _cgroup_dirs(cgroup_parent) if os.path.isdir(d)
                 for e in os.listdir(d) if os.path.isdir(os.path.join(d, e))]
        # the spares after the directories: a spare forked meanwhile (the forkserver forks one
        # once idle) has made its directory after it appeared in /proc
        spares = _spare_cgroups(eng)
        return [(d, e) for d, e in found if e not in spares]

    # a monitor exits right after it recorded the exit, and an AutoRemove container leaves the
    # list before its monitor has removed its cgroup: both settle within a bounded time
    for _ in range(250):
        procs, cgroups = _processes_under(str(data_root)), cgroups_left()
        if not procs and not cgroups:
            break
        time.sleep(0.02)
    assert procs == []
    assert cgroups == []
    with open("/proc/self/mountinfo") as f:
        assert str(data_root) not in f.read()


@pytest.fixture(scope="module")
def ctr_engine(tmp_path_factory, busybox_tar):
    """An engine with busybox:latest loaded and its own cgroup parent, shared by a module's
    tests (use with the `clean_containers` fixture)."""
    import uuid
    root = tmp_path_factory.mktemp("ctr") / "root"
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    eng = make_engine(root, {"cgroup-parent": parent})
    with open(busybox_tar, "rb") as f:
        eng.image_load(f)
    eng.test_cgroup_parent = parent
    eng.test_root = root
    yield eng
    remove_all_containers(eng)
    eng.close()
    for d in _cgroup_dirs(parent):
        if os.path.isdir(d):
            os.rmdir(d)


@pytest.fixture
def clean_containers(ctr_engine):
    """After the test: remove every container and assert nothing leaked."""
    yield ctr_engine
    remove_all_containers(ctr_engine)
    assert_nothing_leaked(ctr_engine, ctr_engine.test_root, ctr_engine.test_cgroup_parent)


def run_container(eng, cmd, image="busybox:latest", name=None, remove=True, **extra):
    """Create, start and wait for `cmd` (list or sh -c string); returns (exit code, stdout
    bytes, stderr bytes, inspect). HostConfig fields go in extra["HostConfig"]."""
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    config = dict({"Image": image, "Cmd": cmd}, **extra)
    cid = eng.container_create(config, name=name)["Id"]
    try:
        eng.container_start(cid)
        code = eng.container_wait(cid)["StatusCode"]
        out = b"".join(line for s, line in eng.container_logs(cid, stderr=False))
        err = b"".join(line for s, line in eng.container_logs(cid, stdout=False))
        info = eng.container_inspect(cid)
    finally:
        if remove:
            eng.container_remove(cid, force=True)
    return code, out, err, info
