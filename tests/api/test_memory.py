"""berthd gives its freed heap back to the system once the API is idle
(runtime/daemon/memory.py): the trigger in runtime/api/admission.Slots, the idle timer, and a
real berthd trimming once after a burst of requests."""

import json
import os
import re
import signal
import threading
import time

import pytest

from runtime.api import admission
from runtime.daemon import diagnostics, memory
from tests.api.conftest import Berthd

pytestmark = pytest.mark.timeout(120)


def _wait_for(pred, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_slots_call_on_idle_only_when_the_last_slot_comes_back():
    idle = []
    slots = admission.Slots(2, on_idle=lambda: idle.append(1))
    never_gone = lambda: False  # noqa: E731
    slots.acquire(never_gone)
    slots.acquire(never_gone)
    slots.release()
    assert idle == []  # one request still in work
    slots.release()
    assert idle == [1]
    # a slot handed straight to a waiting request is not idleness either
    slots.acquire(never_gone)
    slots.acquire(never_gone)
    waiter = threading.Thread(target=slots.acquire, args=(never_gone,))
    waiter.start()
    assert _wait_for(lambda: slots.waiting() == 1, 5)
    slots.release()
    waiter.join(5)
    assert idle == [1]
    slots.release()
    slots.release()
    assert idle == [1, 1]


def test_the_trimmer_waits_for_quiet_and_trims_once_per_idle_moment():
    trims = []
    t = memory.IdleTrimmer(quiet=2.0, trim_fn=lambda: trims.append(time.monotonic()) or True)
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # requests keep ending: no trim while they do
            t.poke()
            time.sleep(0.05)
        assert trims == []
        last_poke = time.monotonic()
        t.poke()
        assert _wait_for(lambda: trims, 10)
        assert trims[0] >= last_poke + 2.0
        time.sleep(0.5)
        assert len(trims) == 1  # nothing more until the next poke
        t.poke()
        assert _wait_for(lambda: len(trims) == 2, 10)
    finally:
        t.stop()


def test_trim_is_callable_on_this_libc():
    assert memory.resident_kb() > 0
    memory.trim()  # glibc here: releases or finds nothing to release, and does not fail


def test_berthd_trims_once_after_a_burst(tmp_path, busybox_tar):
    d = Berthd(str(tmp_path / "d"), extra_args=["--debug"])
    d.start()
    try:
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        trimmed = re.compile(r"idle: free heap given back, resident (\d+) -> (\d+) kB")

        def lines():
            with open(d.log_path) as f:
                return trimmed.findall(f.read())

        assert _wait_for(lines, 10)  # the load's own idle moment
        before = len(lines())
        for _ in range(60):  # a burst: creates, and listings of them
            status, _, body = d.api("POST", "/containers/create", body={
                "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
            assert status == 201, body
            assert d.api("GET", "/containers/json?all=1")[0] == 200
        assert _wait_for(lambda: len(lines()) > before, 10)
        time.sleep(1.5)
        found = lines()
        # a client's requests one after another leave gaps far under the quiet time: the
        # burst's 120 requests make one idle moment (a few when a loaded machine stalls the client)
        assert len(found) - before <= 10
        rss_before, rss_after = (int(x) for x in found[-1])
        assert 0 < rss_after <= rss_before
    finally:
        d.cleanup()


def _dump_after_usr1(d, seconds=60):
    """Send berthd SIGUSR1 and return the dump file's text."""
    root = d.data_root
    before = set(os.listdir(root))
    os.kill(d.proc.pid, signal.SIGUSR1)
    assert _wait_for(lambda: [n for n in set(os.listdir(root)) - before
                              if n.startswith("berthd-dump-") and n.endswith(".log")], seconds)
    (name,) = [n for n in set(os.listdir(root)) - before if n.endswith(".log")]
    with open(os.path.join(root, name)) as f:
        return f.read()


def test_largest_sites_are_tracemallocs_own_statistics():
    import tracemalloc
    tracemalloc.start(4)
    try:
        kept = [bytearray(1000 + i) for i in range(300)] + [[i] * 50 for i in range(300)]
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ours = diagnostics._largest_sites(snapshot, tracemalloc.__file__)
    theirs = snapshot.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),)) \
        .statistics("traceback")
    assert sorted((s[0], s[1], tracemalloc.Traceback(s[2])) for s in ours) == \
        sorted((s.size, s.count, s.traceback) for s in theirs)
    assert max(s[0] for s in ours) >= sum(1000 + i for i in range(300))  # the bytearrays' line

    class WithoutRawTraces(object):  # a Python whose snapshot keeps its traces otherwise
        traces = ()
        filter_traces = snapshot.filter_traces

    documented = diagnostics._largest_sites(WithoutRawTraces(), tracemalloc.__file__)
    assert sorted((s[0], s[1], s[2]) for s in documented) == \
        sorted((s.size, s.count, s.traceback) for s in theirs)
    del kept


def test_sigusr1_writes_threads_and_the_largest_allocations(tmp_path, busybox_tar):
    d = Berthd(str(tmp_path / "d"), env={"BERTHD_TRACEMALLOC": "8"})
    d.start()
    try:
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        text = _dump_after_usr1(d)
        assert re.search(r"^berthd pid %d at \d{8}T\d{6} UTC\nVmRSS: \d+ kB" % d.proc.pid, text)
        assert re.search(r"^thread api .*berth\.sock \(\d+\):\n", text, re.M)  # the API's thread
        assert "in serve_forever" in text
        m = re.search(r"^allocations: (\d+) kB live in \d+ blocks", text, re.M)
        assert m and int(m.group(1)) > 100
        # the sites are berth's and the stdlib's frames, largest first
        sizes = [int(s) for s in re.findall(r"^ *(\d+) kB +\d+ blocks$", text, re.M)]
        assert len(sizes) == diagnostics.TOP and sizes == sorted(sizes, reverse=True)
        assert re.search(r'File ".*/runtime/.*\.py", line \d+', text.split("allocations:")[1])
        assert d.api("GET", "/_ping")[0] == 200  # and it goes on serving
        assert not [n for n in os.listdir(d.data_root) if n.endswith(".tmp")]
    finally:
        d.cleanup()


# imported by the first build, pull or tcp:// listener, not by a daemon that has served none:
# each is memory held for the daemon's life (the registry client brings http.client, ssl and
# email: 2.4 MB on Python 3.6); http.server, concurrent.futures and platform not at all
NOT_AT_START = ("http.server", "http.client", "email", "ssl", "html", "mimetypes", "concurrent",
                "concurrent.futures", "platform", "runtime.build.builder",
                "runtime.registry.transport", "runtime.api.tcp", "uuid")


def test_sigusr1_without_tracing_says_how_to_turn_it_on_and_lists_the_modules(tmp_path, busybox_tar):
    d = Berthd(str(tmp_path / "d"))
    d.start()
    try:
        with open(busybox_tar, "rb") as f:  # a load, a container created, listed and removed
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        status, _, body = d.api("POST", "/containers/create", body={
            "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
        assert status == 201, body
        for path in ("/containers/json?all=1", "/images/json", "/info", "/version"):
            assert d.api("GET", path)[0] == 200
        assert d.api("DELETE", "/containers/%s" % json.loads(body)["Id"])[0] == 204
        text = _dump_after_usr1(d)
        assert "allocations: not traced (start berthd with BERTHD_TRACEMALLOC=N" in text
        assert "thread MainThread" in text
        m = re.search(r"^modules \((\d+)\): (.*)$", text, re.M)
        modules = m.group(2).split()
        assert int(m.group(1)) == len(modules) and "runtime.engine" in modules
        assert sorted(set(NOT_AT_START) & set(modules)) == []
        info = json.loads(d.api("GET", "/info")[2])
        assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", info["ID"])
    finally:
        d.cleanup()


def test_a_bad_tracemalloc_setting_is_one_line(tmp_path):
    for value in ("lots", "500"):
        with pytest.raises(ValueError, match="BERTHD_TRACEMALLOC=.*give the number of frames"):
            diagnostics.trace_from_env({"BERTHD_TRACEMALLOC": value})
    assert diagnostics.trace_from_env({}) == 0
    d = Berthd(str(tmp_path / "d"), env={"BERTHD_TRACEMALLOC": "lots"})
    with pytest.raises(RuntimeError, match=r"berthd exited 1:\nberthd: BERTHD_TRACEMALLOC='lots'"):
        d.start()
    d.cleanup()
