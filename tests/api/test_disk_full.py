"""A full data root: berthd's data root on a small tmpfs, filled (by a file of the test's) during
load, pull, commit and the container's log writing. Each fails in one line that names the data
root, or (logs) drops what does not fit and still records the exit; the checker finds nothing
wrong, nothing new is left under the data root, and the same operation succeeds once space is
freed."""

import json
import os
import re
import struct
import subprocess
import time

import pytest

from tests import imagefactory
from tests.api.conftest import Berthd
from tests.registry.registries import Registry

pytestmark = pytest.mark.timeout(300)

SIZE_MB = 64


@pytest.fixture(scope="module")
def small(tmp_path_factory, busybox_tar):
    """A berthd whose data root is a 64 MB tmpfs, busybox loaded."""
    d = Berthd(str(tmp_path_factory.mktemp("diskfull")))
    os.makedirs(d.data_root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % SIZE_MB, "tmpfs", d.data_root], check=True)
    try:
        d.start()
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read())[0] == 200
        yield d
    finally:
        d.cleanup()
        subprocess.run(["umount", "-l", d.data_root], stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("diskfull-registry")).start()
    yield r
    r.stop()


class Filler(object):
    """A file of the test's that leaves `free` bytes on the data root's filesystem."""

    def __init__(self, d, free):
        self.path = os.path.join(d.data_root, "filler")
        st = os.statvfs(d.data_root)
        size = st.f_bavail * st.f_frsize - free
        assert size > 0, "the data root has less than %d bytes free already" % free
        subprocess.run(["fallocate", "-l", str(size), self.path], check=True)

    def free(self):
        if os.path.exists(self.path):
            os.unlink(self.path)


def _files(d):
    """Every file under the data root but the filler and berthd's logs of containers."""
    out = set()
    for top, dirs, files in os.walk(d.data_root):
        for f in files + [x for x in dirs if os.path.islink(os.path.join(top, x))]:
            rel = os.path.relpath(os.path.join(top, f), d.data_root)
            if rel != "filler" and not rel.endswith("-json.log"):
                out.add(rel)
    return out


def _checker_clean(d):
    report = json.loads(d.api("GET", "/berth/check")[2])
    assert report["Problems"] == 0, report
    return report


def _one_line_naming_the_root(d, text):
    assert "no space left" in text.lower(), text
    assert d.data_root in text, text
    assert "\n" not in text.strip(), text


def _stream_error(body):
    """The error of a JSON message stream (or of an error reply)."""
    last = json.loads(body.decode().strip().splitlines()[-1])
    return last.get("error") or last.get("message") or ""


def _big_image(tmp_path, tag, mb=12):
    layer = imagefactory.layer_tar([("dir", "d"), ("file", "d/big", os.urandom(mb << 20))])
    return imagefactory.docker_archive(str(tmp_path / "big.tar"), [imagefactory.Image(
        tag, [imagefactory.busybox_layer_tar(), layer])])


def test_load(small, tmp_path):
    with open(_big_image(tmp_path, "big:load"), "rb") as f:
        data = f.read()
    before = _files(small)
    filler = Filler(small, 4 << 20)
    try:
        status, _, body = small.api("POST", "/images/load", body=data)
        assert status == 500, body
        _one_line_naming_the_root(small, _stream_error(body))
        _checker_clean(small)
        assert small.api("GET", "/images/big:load/json")[0] == 404
        assert _files(small) == before
    finally:
        filler.free()
    status, _, body = small.api("POST", "/images/load", body=data)
    assert status == 200 and b"Loaded image: big:load" in body, body
    assert _checker_clean(small)["Findings"] == []
    assert small.api("DELETE", "/images/big:load")[0] == 200


def test_pull(small, registry, tmp_path):
    ref = "%s/big:pull" % registry.host
    with open(_big_image(tmp_path, ref), "rb") as f:
        assert small.api("POST", "/images/load", body=f.read())[0] == 200
    out = small.berth("push", ref, timeout=120)
    assert out.returncode == 0, out.stderr
    assert small.api("DELETE", "/images/%s" % ref)[0] == 200
    before = _files(small)
    filler = Filler(small, 4 << 20)
    try:
        out = small.berth("pull", ref, timeout=120)
        assert out.returncode != 0
        err = out.stderr.decode().strip()
        _one_line_naming_the_root(small, err)
        status, _, body = small.api("POST", "/images/create?fromImage=%s/big&tag=pull" % registry.host)
        _one_line_naming_the_root(small, _stream_error(body))
        report = _checker_clean(small)
        # what is left is an interrupted download's part (a pull reuses it), nothing else
        assert all(f["Reusable"] for f in report["Findings"]), report
        assert small.api("GET", "/images/%s/json" % ref)[0] == 404
    finally:
        filler.free()
    out = small.berth("pull", ref, timeout=120)
    assert out.returncode == 0, out.stderr
    assert _checker_clean(small)["Findings"] == []
    assert small.api("DELETE", "/images/%s" % ref)[0] == 200
    assert _files(small) == before


def test_commit(small):
    out = small.berth("run", "--name", "writer", "busybox", "dd", "if=/dev/urandom", "of=/big",
                      "bs=1M", "count=12")
    assert out.returncode == 0, out.stderr
    before = _files(small)
    filler = Filler(small, 4 << 20)
    try:
        status, _, body = small.api("POST", "/commit?container=writer&repo=committed&tag=1")
        assert status == 500, body
        _one_line_naming_the_root(small, json.loads(body)["message"])
        out = small.berth("commit", "writer", "committed:2")
        assert out.returncode != 0
        _one_line_naming_the_root(small, out.stderr.decode().strip())
        _checker_clean(small)
        assert small.api("GET", "/images/committed:1/json")[0] == 404
        assert _files(small) == before
    finally:
        filler.free()
    out = small.berth("commit", "writer", "committed:1")
    assert out.returncode == 0, out.stderr
    out = small.berth("run", "--rm", "committed:1", "wc", "-c", "/big")
    assert out.returncode == 0 and out.stdout.split()[0] == str(12 << 20).encode(), out
    assert _checker_clean(small)["Findings"] == []
    assert small.api("DELETE", "/containers/writer")[0] == 204
    assert small.api("DELETE", "/images/committed:1")[0] == 200


LINE = re.compile(rb"\Arun-1-(line-[0-9]+-x{60}|end)\n\Z")


def _frames(body):
    """The payload of a multiplexed (non-TTY) log stream."""
    out, i = [], 0
    while i < len(body):
        size = struct.unpack(">I", body[i + 4:i + 8])[0]
        out.append(body[i + 8:i + 8 + size])
        i += 8 + size
    return b"".join(out)


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_log_writing(small, driver):
    """The log does not fit: the container runs to its end, its exit code is recorded, the log
    holds whole records only; once space is freed, the next start logs again."""
    name = "talker-" + driver
    script = ("i=0; while [ $i -lt 20000 ]; do echo run-$1-line-$i-%s; i=$((i+1)); done; echo run-$1-end; "
              "exit 3" % ("x" * 60))
    out = small.berth("create", "--name", name, "--log-driver", driver, "busybox", "sh", "-c", script,
                      "sh", "1")
    assert out.returncode == 0, out.stderr
    filler = Filler(small, 256 << 10)
    try:
        assert small.berth("start", name).returncode == 0
        state = _wait_exit(small, name)
        assert state["ExitCode"] == 3 and state["Error"] == "", state
        st = os.statvfs(small.data_root)
        # it was full indeed: of the 256 KiB, what is left is at most a dropped batch (one read
        # of the pipe, up to 64 KiB, as the driver wrote it: json-file's records of these lines
        # are ~1.7x their text, and a CI run left 100 KiB) and exit.reserve's 16 KiB
        assert st.f_bavail * st.f_frsize < 144 << 10
        status, _, body = small.api("GET", "/containers/%s/logs?stdout=1" % name)
        assert status == 200
        lines = _frames(body).splitlines(True)
        # records that did not fit are dropped whole (a batch cut off frees its pages again, so
        # a later, smaller batch such as the last line may still fit): what is there is whole
        # lines of this run, fewer than it wrote
        assert lines and lines[0].startswith(b"run-1-line-0-"), lines[:3]
        assert len(lines) < 20001, len(lines)
        assert all(LINE.match(x) for x in lines), [x for x in lines if not LINE.match(x)][:3]
        ends = lines.count(b"run-1-end\n")
        _checker_clean(small)
    finally:
        filler.free()
    # the same container's next run: its arguments are the same, so its lines say run-1 again;
    # the log now ends with the run's last line
    assert small.berth("start", name).returncode == 0
    state = _wait_exit(small, name)
    assert state["ExitCode"] == 3, state
    out = small.berth("logs", "--tail", "1", name)
    assert out.returncode == 0 and out.stdout.strip() == b"run-1-end", out
    out = small.berth("logs", name)
    assert out.returncode == 0 and out.stdout.count(b"run-1-end") == ends + 1, out.stdout[-300:]
    assert _checker_clean(small)["Findings"] == []
    assert small.api("DELETE", "/containers/%s" % name)[0] == 204


def _wait_exit(d, name, timeout=120):
    deadline = time.time() + timeout
    while True:
        state = json.loads(d.api("GET", "/containers/%s/json" % name)[2])["State"]
        if not state["Running"] or time.time() > deadline:
            return state
        time.sleep(0.2)
