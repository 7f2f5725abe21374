"""Lab fixtures: throwaway real hosts (see docs/lab.md).

- `lab`: one Lab for the whole session, torn down at the end.
- `lab_host`: one Debian host shared by the whole session. Tests may add files, users and
  units to it but must not break it (no poweroff, no network or sshd changes, no rm -rf /etc);
  use `lab_hosts` for anything destructive.
- `lab_hosts(n, nested=False, flavour="debian")`: fresh hosts, removed when the test ends.

Teardown also runs when a test fails, on Ctrl-C (pytest finalizers) and on SIGTERM or an
abrupt interpreter exit (atexit). If the machine cannot run a lab, the fixtures fail with a
message naming what is missing; nothing is skipped silently.
"""

import atexit
import os
import signal

import pytest

from tests.lab import Lab, LabError
from tests.lab.lab import check_prerequisites, reap_orphans

_labs = []


def _down_all_session_labs() -> None:
    while _labs:
        lab = _labs.pop()
        try:
            lab.down()
        except LabError as e:  # pragma: no cover - reported, then the next lab is tried
            print(f"lab teardown: {e}")


_MAIN_PID = os.getpid()


def _on_sigterm(signum, frame):
    if os.getpid() != _MAIN_PID:
        # a forked child of the test process (an engine test's fork): die as if never handled
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    # turn SIGTERM into the same path as Ctrl-C so pytest runs every finalizer
    raise KeyboardInterrupt(f"signal {signum}")


atexit.register(lambda: os.getpid() == _MAIN_PID and _down_all_session_labs())
if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _on_sigterm)


def pytest_sessionfinish(session, exitstatus):
    """The engines tests made without a cgroup parent of their own used this process's: remove it."""
    from tests.engine.conftest import remove_session_cgroup_parent
    remove_session_cgroup_parent()


@pytest.fixture(scope="session")
def lab():
    """The session's Lab (private bridge 10.247.X.0/24); torn down at session end."""
    try:
        check_prerequisites()
    except LabError as e:
        pytest.fail(f"the lab cannot run here: {e}", pytrace=False)
    reap_orphans()  # labs of earlier sessions that were killed (SIGKILL) before teardown
    lab = Lab(owned=True)
    _labs.append(lab)
    yield lab
    if lab in _labs:
        _labs.remove(lab)
    lab.down()


@pytest.fixture(scope="session")
def lab_host(lab):
    """One Debian host shared by every test of the session: do not break it."""
    (host,) = lab.up(1)
    return host


def _host_factory(lab):
    """Yield `make(n, nested=False, flavour="debian")` -> n fresh hosts; stop them all at teardown."""
    made = []

    def make(n: int = 1, nested: bool = False, flavour: str = "debian"):
        hosts = lab.up(n, nested=nested, flavour=flavour)
        made.extend(hosts)
        return hosts

    yield make
    if made:
        lab.stop(made)


@pytest.fixture
def lab_hosts(lab):
    """Factory: `lab_hosts(n, nested=False, flavour="debian")` -> n fresh hosts for this test."""
    yield from _host_factory(lab)


@pytest.fixture(scope="module")
def module_lab_hosts(lab):
    """Like `lab_hosts`, but the hosts live until the end of the test module (share them)."""
    yield from _host_factory(lab)


def pytest_collection_modifyitems(config, items):
    """Modules with a test marked `slow` first (each module kept whole, in its own order): under
    pytest-xdist (`tests/run.sh` runs the suite on two workers) the long ones then start at
    once and the short ones fill in around them, rather than one long test ending the run."""
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow)
