"""A container's log files: the writers the monitor feeds with PID 1's output
(runtime/container/logdriver.py decides which): Docker's json-file (one {"log","stream","time"}
object per line), dockerd's `local` compact format (length-prefixed protobuf LogEntry records)
and none; and the record readers both the monitor (attach replay) and the engine
(runtime/container/logs.py) read them with.

Rotation (max-size, max-file, compress) happens here, between whole records, so no line is
ever split across files: `<log>` is renamed to `<log>.1` (older ones shift up, the oldest is
dropped) and a new `<log>` opened; with compress, `<log>.1` is then gzipped to `<log>.1.gz`.
Readers read the rotated files first and notice the rename.
"""

import errno
import json
import os
import struct
import time

from runtime.framing import STDERR, STDOUT
from runtime.timefmt import parse_rfc3339, rfc3339

_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
_STREAMS = {"stdout": STDOUT, "stderr": STDERR}
LONG_LINE = 16384  # Docker splits longer lines


class _Rotating(object):
    """An append-only file of whole records, rotated past max_size."""

    def __init__(self, path, max_size=0, max_file=1, compress=False):
        # type: (str, int, int, bool) -> None
        self.path, self.max_size, self.max_file, self.compress = path, max_size, max_file, compress
        d = os.path.dirname(path)
        if not os.path.isdir(d):
            os.makedirs(d)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size
        self.dropped = 0  # records lost to a full disk

    def _open(self, truncate=False):
        # type: (bool) -> int
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
        return os.open(self.path, flags, 0o640)

    def append(self, records):
        # type: (list) -> None
        """Write whole records, as few writes as the rotation allows."""
        buf, n = [], 0
        for r in records:
            if self.max_size and self.size + n and self.size + n + len(r) > self.max_size:
                self._flush(buf, n)
                buf, n = [], 0
                self.rotate()
            buf.append(r)
            n += len(r)
        self._flush(buf, n)

    def _flush(self, buf, n):
        # type: (list, int) -> None
        """Append the records; on a full disk they are dropped (and counted), as dockerd's
        json-file driver drops them, and a record written in part is cut off again, so the file
        holds whole records only: the container runs on and its exit is still recorded."""
        if buf:
            data = b"".join(buf)
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                os.ftruncate(self.fd, self.size)
                self.dropped += len(buf)
                return
            self.size += n

    def rotate(self):
        # type: () -> None
        os.close(self.fd)
        if self.max_file > 1:
            ext = ".gz" if self.compress else ""
            for name in (self._name(self.max_file - 1, ""), self._name(self.max_file - 1, ".gz")):
                try:
                    os.unlink(name)
                except FileNotFoundError:
                    pass
            for n in range(self.max_file - 2, 0, -1):
                try:
                    os.rename(self._name(n, ext), self._name(n + 1, ext))
                except FileNotFoundError:
                    pass
            os.rename(self.path, self._name(1, ""))
            self.fd = self._open()
            if self.compress:
                try:
                    _gzip(self._name(1, ""), self._name(1, ".gz"))
                except OSError as e:  # a full disk: the rotated file stays uncompressed
                    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
        else:
            self.fd = self._open(truncate=True)
        self.size = 0

    def _name(self, n, ext):
        # type: (int, str) -> str
        return "%s.%d%s" % (self.path, n, ext)

    def close(self):
        # type: () -> None
        os.close(self.fd)


def _gzip(src, dest):
    # type: (str, str) -> None
    """src -> dest gzipped (temp + rename), then src removed: a reader sees one or the other."""
    import gzip
    import shutil
    tmp = dest + ".tmp"
    try:
        with open(src, "rb") as f, gzip.open(tmp, "wb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.rename(tmp, dest)
    os.unlink(src)


class _LineLog(object):
    """Splits output into lines (and LONG_LINE pieces) per stream; subclasses encode them."""

    def __init__(self, path, max_size=0, max_file=1, compress=False):
        # type: (str, int, int, bool) -> None
        self.file = _Rotating(path, max_size, max_file, compress)
        self.partial = {STDOUT: b"", STDERR: b""}

    def write(self, stream, data):
        # type: (int, bytes) -> None
        lines = (self.partial[stream] + data).split(b"\n")
        rest = lines.pop()
        now = time.time()
        out = [self.entry(stream, line, True, now) for line in lines]
        if len(rest) >= LONG_LINE:
            out.append(self.entry(stream, rest, False, now))
            rest = b""
        self.partial[stream] = rest
        if out:
            self.file.append(out)

    def entry(self, stream, line, newline, now):
        # type: (int, bytes, bool, float) -> bytes
        raise NotImplementedError

    def close(self):
        # type: () -> None
        now = time.time()
        self.file.append([self.entry(s, d, False, now) for s, d in sorted(self.partial.items()) if d])
        self.file.close()


class JsonLog(_LineLog):
    """Docker's json-file driver."""

    def entry(self, stream, line, newline, now):
        # type: (int, bytes, bool, float) -> bytes
        text = (line + b"\n" if newline else line).decode("utf-8", "replace")
        return ('{"log":%s,"stream":"%s","time":"%s"}\n' % (json.dumps(text), _NAMES[stream],
                                                            rfc3339(now))).encode()


class LocalLog(_LineLog):
    """dockerd's local driver: [uint32 size][protobuf LogEntry][uint32 size] per line; the
    line without its newline, `partial` set when it had none."""

    def entry(self, stream, line, newline, now):
        # type: (int, bytes, bool, float) -> bytes
        source = _NAMES[stream].encode()
        msg = (b"\x0a" + _varint(len(source)) + source + b"\x10" + _varint(int(now * 1e9))
               + b"\x1a" + _varint(len(line)) + line + (b"" if newline else b"\x20\x01"))
        size = struct.pack(">I", len(msg))
        return size + msg + size


class NoLog(object):
    """The none driver."""

    def write(self, stream, data):
        # type: (int, bytes) -> None
        pass

    def close(self):
        # type: () -> None
        pass


def _varint(n):
    # type: (int) -> bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def writer(log):
    # type: (dict) -> object
    """The writer for a run spec's "log" ({"driver", "path", "max_size", "max_file", "compress"})."""
    driver = log.get("driver", "json-file")
    if driver == "none":
        return NoLog()
    cls = LocalLog if driver == "local" else JsonLog
    return cls(log["path"], log.get("max_size", 0), log.get("max_file", 1), log.get("compress", False))


# ---------------------------------------------------------------- reading

def files(current, max_file):
    # type: (str, int) -> list
    """The log files oldest first: rotated ones (`.N`, or `.N.gz` when compressed) and then
    the current one, those that exist."""
    out = []
    for n in range(max(max_file, 1) - 1, 0, -1):
        for name in ("%s.%d" % (current, n), "%s.%d.gz" % (current, n)):
            if os.path.exists(name):
                out.append(name)
    if os.path.exists(current):
        out.append(current)
    return out


def open_log(path):
    # type: (str) -> object
    if path.endswith(".gz"):
        import gzip
        return gzip.open(path, "rb")
    return open(path, "rb")


def entries_of(driver):
    # type: (str) -> object
    """The record reader of a driver: f -> (stream, time, text, raw time) per complete record."""
    return local_entries if driver == "local" else json_entries


def read_all(current, driver, max_file):
    # type: (str, str, int) -> object
    """Every (stream, text) of the log, oldest first (attach's log replay)."""
    entries = entries_of(driver)
    for path in files(current, max_file):
        try:
            f = open_log(path)
        except FileNotFoundError:
            continue
        with f:
            for stream, _, text, _ in entries(f):
                yield stream, text


def json_entries(f):
    # type: (object) -> object
    """(stream, time, text, raw time) for each complete json-file line from f's position."""
    while True:
        pos = f.tell()
        line = f.readline()
        if not line:
            return
        if not line.endswith(b"\n"):  # being written: come back for it
            f.seek(pos)
            return
        try:
            rec = json.loads(line.decode("utf-8"))
        except ValueError:
            continue
        raw = rec.get("time", "")
        yield _STREAMS.get(rec.get("stream"), STDOUT), parse_rfc3339(raw), rec.get("log", ""), raw


def local_entries(f):
    # type: (object) -> object
    """The same for the local driver's records ([size][LogEntry][size])."""
    while True:
        pos = f.tell()
        head = f.read(4)
        if len(head) < 4:
            f.seek(pos)
            return
        size = struct.unpack(">I", head)[0]
        body = f.read(size + 4)
        if len(body) < size + 4:
            f.seek(pos)
            return
        source, nanos, line, partial = _log_entry(body[:size])
        t = nanos / 1e9
        text = line.decode("utf-8", "replace") + ("" if partial else "\n")
        yield _STREAMS.get(source, STDOUT), t, text, _rfc3339_ns(nanos)


def _log_entry(msg):
    # type: (bytes) -> tuple
    """(source, time_nano, line, partial) of a protobuf LogEntry (the fields we write)."""
    source, nanos, line, partial = "stdout", 0, b"", False
    i = 0
    while i < len(msg):
        key, i = _read_varint(msg, i)
        field, kind = key >> 3, key & 7
        if kind == 0:
            value, i = _read_varint(msg, i)
            if field == 2:
                nanos = value
            elif field == 4:
                partial = bool(value)
        elif kind == 2:
            n, i = _read_varint(msg, i)
            value, i = msg[i:i + n], i + n
            if field == 1:
                source = value.decode("ascii", "replace")
            elif field == 3:
                line = value
        elif kind == 1:
            i += 8
        elif kind == 5:
            i += 4
        else:
            break
    return source, nanos, line, partial


def _read_varint(buf, i):
    # type: (bytes, int) -> tuple
    value, shift = 0, 0
    while i < len(buf):
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return value, i


def _rfc3339_ns(nanos):
    # type: (int) -> str
    whole = nanos // 1000000000
    return rfc3339(whole)[:-11] + ".%09dZ" % (nanos % 1000000000)
