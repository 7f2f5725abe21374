"""HTTP/1.1 as berthd speaks it (runtime/api/http11.py), on a real berthd's socket: keep-alive,
`Expect: 100-continue`, and requests it cannot read answered with one JSON line and the
connection closed."""

import json
import socket

import pytest

from runtime.api.http11 import Headers, http_date

pytestmark = pytest.mark.timeout(60)


def _exchange(d, data, read_until_close=True):
    """Send data on a new connection to berthd; everything it answers (until it closes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.sock)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
            if not read_until_close and out.count(b"\r\n\r\nOK") >= 2:  # two pings answered
                return out
    finally:
        s.close()


def _status_and_message(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body.decode())["message"]


@pytest.mark.parametrize("request_bytes, status, words", [
    (b"GET /_ping\r\n\r\n", 400, "malformed request line"),
    (b"GET /_ping HTTP/2.0\r\n\r\n", 505, "use HTTP/1.1"),
    (b"GET /_ping HTTPS/1.1\r\n\r\n", 400, "bad HTTP version"),
    (b"BREW /_ping HTTP/1.1\r\nHost: x\r\n\r\n", 501, "'BREW' is not served"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "request line is longer"),
    (b"GET /_ping HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431, "header line is longer"),
    (b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n",
     431, "more than 100 header fields"),
    (b"GET /_ping HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header line"),
    (b"GET /_ping HTTP/1.1\r\n folded first\r\n\r\n", 400, "starts with white space"),
])
def test_a_request_that_cannot_be_read_gets_json_and_a_closed_connection(berthd, request_bytes,
                                                                          status, words):
    got, headers, message = _status_and_message(_exchange(berthd, request_bytes))
    assert got == status and words in message
    assert headers["Connection"] == "close" and headers["Content-Type"] == "application/json"


def test_keep_alive_by_version_and_connection_header(berthd):
    ping = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
    two = _exchange(berthd, ping + ping, read_until_close=False)  # 1.1: both on one connection
    assert two.count(b"HTTP/1.1 200 OK") == 2
    one = _exchange(berthd, b"GET /_ping HTTP/1.0\r\n\r\n" + ping)  # 1.0: closed after one
    assert one.count(b"HTTP/1.1 200 OK") == 1 and one.endswith(b"OK")
    closed = _exchange(berthd, b"GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n" + ping)
    assert closed.count(b"HTTP/1.1 200 OK") == 1
    kept = _exchange(berthd, b"GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + ping,
                     read_until_close=False)
    assert kept.count(b"HTTP/1.1 200 OK") == 2


def test_expect_100_continue_is_answered_before_the_body(berthd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(berthd.sock)
    try:
        body = b'{"Name": "http11-expect"}'
        s.sendall(b"POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert s.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body was sent
        s.sendall(body)
        reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 201 Created\r\n"), reply
        assert b"Server: berth/" in reply and b"Api-Version: " in reply
    finally:
        s.close()
    assert berthd.api("DELETE", "/volumes/http11-expect")[0] == 204


def test_headers_are_matched_without_case_and_folded_lines_continue():
    h = Headers([("Content-Length", "3"), ("x-auth", "a"), ("X-Auth", "b")])
    assert h.get("content-length") == "3" and h["CONTENT-LENGTH"] == "3"
    assert h.get("X-AUTH") == "a" and h.get_all("x-auth") == ["a", "b"]
    assert "x-Auth" in h and "missing" not in h and h.get("missing", "d") == "d"
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(1796353200) == "Fri, 04 Dec 2026 03:00:00 GMT"
