"""runtime/api/threads.py: a connection's thread is kept for the next connection, connections
open at once each have a thread (a long stream never holds up a short request), and a thread
with nothing to do ends after IDLE_SECONDS."""

import os
import socket
import socketserver
import threading
import time

import pytest

from runtime.api import threads


class _Handler(socketserver.StreamRequestHandler):
    """Echoes one line, prefixed with the name and id of the thread serving it; a line "hold"
    keeps the connection until its client closes it."""

    def handle(self):
        line = self.rfile.readline().strip()
        if line == b"hold":
            self.rfile.read()
            return
        me = threading.current_thread()
        self.server.seen.add(me)
        self.wfile.write(b"%s %d %s\n" % (me.name.encode(), me.ident, line))


class _Server(threads.KeptThreadsMixIn, socketserver.UnixStreamServer):
    def __init__(self, path):
        socketserver.UnixStreamServer.__init__(self, path, _Handler)
        self.setup_kept_threads()
        self.seen = set()  # the thread objects that answered


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "IDLE_SECONDS", 0.5)
    srv = _Server(str(tmp_path / "s.sock"))
    loop = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    loop.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    loop.join(5)


def _ask(path, text):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(text + b"\n")
        return s.makefile("rb").readline().split()


def _serving(name="api connection"):
    return [t for t in threading.enumerate() if t.name == name]


def test_one_thread_serves_connections_one_after_another(server):
    path = server.server_address
    answers = [_ask(path, b"x%d" % i) for i in range(20)]
    assert [a[-1] for a in answers] == [b"x%d" % i for i in range(20)]
    # kept: a few threads at most (the client may connect again before the thread that
    # answered it has closed its side and waits again), not one per connection
    assert len(server.seen) <= 3
    assert len(_serving()) <= 3


def _until_none_serve(seconds=10):
    deadline = time.monotonic() + seconds
    while _serving() and time.monotonic() < deadline:  # IDLE_SECONDS after their last connection
        time.sleep(0.05)
    return _serving()


def test_open_connections_each_have_a_thread_and_idle_ones_end(server):
    path = server.server_address
    assert _until_none_serve() == []  # (another test's)
    held = []
    for _ in range(4):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"hold\n")
        held.append(s)
    try:
        start = time.monotonic()
        assert _ask(path, b"short")[-1] == b"short"  # not queued behind the streams
        assert time.monotonic() - start < 5
        deadline = time.monotonic() + 5
        while len(_serving()) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 5 <= len(_serving()) <= 6
    finally:
        for s in held:
            s.close()
    assert _until_none_serve() == []
    assert _ask(path, b"again")[-1] == b"again"  # and a new one starts when it is needed
    assert os.path.exists(path)
