"""berthd's back-pressure (runtime/api/admission.py) against a real berthd: a burst of
connections waits in the listen backlog instead of failing, requests beyond the slots wait in
arrival order, a request whose client hung up while it waited is dropped (not done), one that
waited too long gets 503 with berthd's reason, `/_ping` never waits, and a handler that waits
for a container gives its slot up."""

import errno
import json
import os
import signal
import socket
import threading
import time

import pytest

from tests.api.conftest import Berthd

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory, busybox_tar):
    """A berthd that works on one request at a time and refuses after 2 s of waiting."""
    d = Berthd(str(tmp_path_factory.mktemp("backpressure")), config={"max-concurrent-requests": 1},
               extra_args=["--debug"], env={"BERTH_API_QUEUE_SECONDS": "2"})
    d.start()
    with open(busybox_tar, "rb") as f:
        assert d.api("POST", "/images/load", body=f.read())[0] == 200
    yield d
    d.cleanup()


def _connect(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    return s


def _send(s, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(("%s %s HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (method, path, len(data))).encode() + data)


def _status(s):
    """The status code of the reply on s (its headers read)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "berthd closed the connection without a reply: %r" % head
        head += chunk
    return int(head.split(b" ", 2)[1]), head


class _SlotHolder(object):
    """A `POST /images/load` that sends part of its body and stalls: its handler holds the only
    slot while it reads, until release() ends the upload."""

    def __init__(self, d):
        self.sock = _connect(d)
        self.sock.sendall(b"POST /images/load HTTP/1.1\r\nHost: berth\r\n"
                          b"Content-Type: application/x-tar\r\nContent-Length: 1048576\r\n\r\n" + b"\0" * 512)
        time.sleep(0.5)  # its handler has the slot and waits for the rest of the body

    def release(self):
        self.sock.close()


def test_a_burst_of_connections_waits_in_the_backlog(berthd):
    """While berthd accepts nothing (stopped), 600 clients connect: every connect succeeds
    (a 128-deep backlog refused the 129th with EAGAIN), and each is served once it runs."""
    socks = []
    os.kill(berthd.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(600):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(berthd.sock)
            except OSError as e:
                s.close()
                pytest.fail("connect %d failed with %s (listen backlog too short)"
                            % (len(socks) + 1, errno.errorcode.get(e.errno, e.errno)))
            socks.append(s)
    finally:
        os.kill(berthd.proc.pid, signal.SIGCONT)
        if len(socks) < 600:
            for s in socks:
                s.close()
    try:
        for s in socks:
            s.setblocking(True)
            s.settimeout(60)
            _send(s, "GET", "/_ping")
        assert [_status(s)[0] for s in socks] == [200] * 600
    finally:
        for s in socks:
            s.close()


def test_a_request_whose_client_hung_up_while_waiting_is_dropped(one_slot):
    holder = _SlotHolder(one_slot)
    try:
        gone = _connect(one_slot)
        _send(gone, "POST", "/containers/create?name=never-made", {"Image": "busybox", "Cmd": ["true"]})
        time.sleep(0.3)
        gone.close()  # hung up while its create waited for the slot
        waiting = _connect(one_slot)
        _send(waiting, "GET", "/containers/json?all=1")
        time.sleep(0.6)  # the waiting create's client is looked at every 0.25 s
    finally:
        holder.release()
    status, head = _status(waiting)
    body = head.split(b"\r\n\r\n", 1)[1]
    length = int([h.split(b":")[1] for h in head.split(b"\r\n")
                  if h.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += waiting.recv(65536)
    waiting.close()
    assert status == 200 and json.loads(body.decode()) == []
    assert one_slot.api("GET", "/containers/never-made/json")[0] == 404
    assert "POST /containers/create dropped: its client has gone" in one_slot.log()


def test_a_request_that_waited_too_long_is_refused_with_the_reason_and_ping_still_answers(one_slot):
    holder = _SlotHolder(one_slot)
    try:
        started = time.time()
        assert one_slot.api("GET", "/_ping")[0] == 200  # never waits for a slot
        status, _, body = one_slot.api("POST", "/containers/create?name=refused",
                                       {"Image": "busybox", "Cmd": ["true"]})
        waited = time.time() - started
    finally:
        holder.release()
    assert status == 503, body
    message = json.loads(body.decode())["message"]
    assert "berthd is busy" in message and "retry" in message and "max-concurrent-requests" in message
    assert 1.5 < waited < 15
    assert one_slot.api("GET", "/containers/refused/json")[0] == 404  # nothing of it was done
    assert one_slot.api("GET", "/containers/json?all=1")[0] == 200  # served again once free


def test_a_wait_for_a_container_holds_no_slot(one_slot):
    status, _, body = one_slot.api("POST", "/containers/create?name=sleeper",
                                   {"Image": "busybox", "Cmd": ["sleep", "30"]})
    assert status == 201, body
    cid = json.loads(body.decode())["Id"]
    try:
        assert one_slot.api("POST", "/containers/%s/start" % cid)[0] == 204
        waiters = []
        for _ in range(3):
            t = threading.Thread(daemon=True, target=lambda: waiters.append(
                one_slot.api("POST", "/containers/%s/wait" % cid)))
            t.start()
        time.sleep(1)
        status, _, body = one_slot.api("GET", "/containers/json")  # would wait 2 s and get 503
        assert status == 200, body
        assert [c["Id"] for c in json.loads(body.decode())] == [cid]
        status, _, body = one_slot.api("POST", "/containers/%s/kill" % cid)
        assert status == 204, body
        deadline = time.time() + 30
        while len(waiters) < 3 and time.time() < deadline:
            time.sleep(0.1)
        assert [w[0] for w in waiters] == [200] * 3
    finally:
        one_slot.api("DELETE", "/containers/%s?force=1" % cid)
