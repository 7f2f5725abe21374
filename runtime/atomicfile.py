"""Files replaced whole: written to a temp file beside the target, then renamed over it, so a
reader sees the old content or the new, never a part. Safe in every process (daemon, CLI,
forkserver, monitors): it imports only os, binascii and json.
"""

import binascii
import json
import os

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Optional  # noqa: F401


def write_bytes(path, data, mode=None, durable=False):
    # type: (str, bytes, Optional[int], bool) -> None
    """Replace path by data atomically. mode: the file's permission bits, set regardless of the
    umask (default: 0666 less the umask, as open() does). The temp file is unique per call, so
    threads and processes writing the same path do not collide; it is removed when the write
    fails. durable: survive a power cut too: the file is fsynced before the rename and its
    directory after it (without, a crash of the machine may leave an empty file)."""
    tmp = "%s.%s.tmp" % (path, binascii.hexlify(os.urandom(6)).decode())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        write_all(fd, data)
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)
        if durable:
            fsync_dir(os.path.dirname(path) or ".")
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_all(fd, data):
    # type: (int, bytes) -> None
    """os.write until all of data is in (a write may take only a part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(path):
    # type: (str) -> None
    """fsync a directory: the names created, renamed or removed in it reach the disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path, text, mode=None, durable=False):
    # type: (str, str, Optional[int], bool) -> None
    """write_bytes of UTF-8 text."""
    write_bytes(path, text.encode("utf-8"), mode, durable)


def write_json(path, obj, mode=None, indent=None, sort_keys=False, durable=False):
    # type: (str, Any, Optional[int], Any, bool, bool) -> None
    """write_bytes of obj as JSON (indented and sorted when asked; a final newline when indented)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys)
    write_text(path, text + "\n" if indent is not None else text, mode, durable)


def read_json(path, default=None):
    # type: (str, Any) -> Any
    """The JSON in path, or default when the file does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
