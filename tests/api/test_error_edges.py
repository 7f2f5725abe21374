"""Client errors get their own status and a one-line message, never a 500: malformed request
bodies and bodies of the wrong JSON type; a credentials file the CLI cannot read is one line
naming it. (A freezer that does not settle on pause: tests/engine/test_container_errors.py.)"""

import json
import socket

import pytest

pytestmark = pytest.mark.timeout(120)


def _raw(berthd, request):
    """Send raw bytes as one HTTP request; (status, JSON body or None)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(berthd.sock)
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, json.loads(body) if body.strip() else None
    finally:
        s.close()


@pytest.mark.parametrize("head,body", [
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"),        # chunk size not hex
    (b"Transfer-Encoding: chunked\r\n", b"\r\n"),                          # no chunk size
    (b"Content-Length: ten\r\n", b"{}"),                                   # length not a number
    (b"Content-Length: -5\r\n", b"{}"),                                    # negative length
])
def test_malformed_body_framing_is_400(berthd, head, body):
    status, doc = _raw(berthd, b"POST /volumes/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       + head + b"\r\n" + body)
    assert status == 400, doc
    assert doc["message"] and "\n" not in doc["message"]


@pytest.mark.parametrize("path", ["/exec/0123abc/start", "/commit?container=nosuch"])
def test_body_of_the_wrong_json_type_is_400(berthd, path):
    status, _, body = berthd.api("POST", path, body=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert status == 400, body
    assert "JSON object" in json.loads(body)["message"]


def test_corrupt_credentials_file_is_one_clear_line(berthd, tmp_path):
    config = tmp_path / "config.json"
    config.write_text("{not json")
    out = berthd.berth("pull", "127.0.0.1:1/x:1", env={"BERTH_CONFIG": str(config)})
    err = out.stderr.decode()
    assert out.returncode == 1, err
    assert str(config) in err and "not valid JSON" in err and "fix or remove it" in err
    assert len(err.strip().splitlines()) == 1
