"""berthd gives its freed heap back to the system once the API is idle
(runtime/daemon/memory.py): the trigger in runtime/api/admission.Slots, the idle timer, and a
real berthd trimming once after a burst of requests."""

import re
import threading
import time

import pytest

from runtime.api import admission
from runtime.daemon import memory
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
