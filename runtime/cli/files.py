"""Container file commands: cp (both ways, through `/containers/{id}/archive`), diff, export.
The tar work is on this side, as the docker CLI does it: the daemon only tars a path out or
extracts a tar into a directory."""

import base64
import json
import os
import sys
import tarfile

from runtime import TYPE_CHECKING
from runtime.cli.client import APIError

if TYPE_CHECKING:
    from typing import Any, Optional, Tuple  # noqa: F401

STAT_HEADER = "x-docker-container-path-stat"


def _split(arg):
    # type: (str) -> Tuple[Optional[str], str]
    """`name:/path` -> (name, path); a local path (also `./a:b`, `/x:y`) -> (None, path)."""
    if arg.startswith((".", "/")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def _stat(client, name, path):
    # type: (Any, str, str) -> Optional[dict]
    try:
        resp = client.send("HEAD", "/containers/%s/archive" % name, {"path": path})
    except APIError as exc:
        if exc.status == 404 and "container" in str(exc).lower() and "file" not in str(exc).lower():
            raise
        if exc.status == 404:
            return None
        raise
    resp.close()
    return json.loads(base64.b64decode(resp.headers.get(STAT_HEADER, "") or "e30="))


def _rebase(name, old, new):
    # type: (str, str, str) -> str
    """A tar member name with its first component old replaced by new."""
    head, sep, rest = name.partition("/")
    return (new + sep + rest) if head == old else name


def _tar_local(src, out, rebase_to=None):
    # type: (str, Any, Optional[str]) -> None
    """src as a tar to out: its base name as the top entry (its contents for `dir/.`)."""
    contents = src.endswith("/.") or src == "."
    base = "." if contents else os.path.basename(os.path.normpath(src))
    top = rebase_to or base
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if contents:
            for entry in sorted(os.listdir(src)):
                tar.add(os.path.join(src, entry), arcname=entry)
        else:
            tar.add(src, arcname=top)


class _Pipe(object):
    """A reader over a thread writing a tar: the request body streams it without a temp file."""

    def __init__(self, write):
        import threading
        r, w = os.pipe()
        self.r = os.fdopen(r, "rb")
        self.error = None  # type: Optional[BaseException]

        def run():
            with os.fdopen(w, "wb") as f:
                try:
                    write(f)
                except BaseException as exc:  # noqa: BLE001 (reported after the request)
                    self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def read(self, n=-1):
        return self.r.read(n)


def _copy_in(client, src, name, dest):
    # type: (Any, str, str, str) -> int
    if src == "-":
        client.send("PUT", "/containers/%s/archive" % name,
                    {"path": dest, "noOverwriteDirNonDir": True}, body=sys.stdin.buffer).close()
        return 0
    if not os.path.lexists(src):
        sys.stderr.write("Error: lstat %s: no such file or directory\n" % os.path.abspath(src))
        return 1
    info = _stat(client, name, dest)
    rebase = None
    target = dest
    if info is None or not (info["mode"] & (1 << 31)):
        if dest.endswith("/"):
            sys.stderr.write("Error: no such directory: %s\n" % dest)
            return 1
        if info is None and os.path.isdir(src) and src.endswith("/."):
            sys.stderr.write("Error: destination %s does not exist\n" % dest)
            return 1
        if info is not None and os.path.isdir(src):
            sys.stderr.write("Error: cannot copy a directory to a file: %s\n" % dest)
            return 1
        target, rebase = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
    pipe = _Pipe(lambda out: _tar_local(src, out, rebase))
    client.send("PUT", "/containers/%s/archive" % name,
                {"path": target, "noOverwriteDirNonDir": True}, body=pipe).close()
    pipe.thread.join()
    if pipe.error:
        raise pipe.error
    return 0


def _safe_members(tar, old, new):
    for member in tar:
        member.name = _rebase(member.name, old, new) if new else member.name
        parts = member.name.split("/")
        if member.name.startswith("/") or ".." in parts:
            raise ValueError("refusing tar member %r: it leaves the destination" % member.name)
        if member.islnk():
            member.linkname = _rebase(member.linkname, old, new) if new else member.linkname
        yield member


class _Reader(object):
    """read(n) over a Response body, for tarfile's stream mode."""

    def __init__(self, resp):
        self.resp = resp

    def read(self, n=-1):
        if n is None or n < 0:
            return b"".join(self.resp.chunks())
        return self.resp.read_exact(n)


def _copy_out(client, name, src, dest):
    # type: (Any, str, str, str) -> int
    resp = client.send("GET", "/containers/%s/archive" % name, {"path": src})
    info = json.loads(base64.b64decode(resp.headers.get(STAT_HEADER, "") or "e30="))
    if dest == "-":
        for chunk in resp.chunks():
            sys.stdout.buffer.write(chunk)
        return 0
    base = "." if src.endswith("/.") else os.path.basename(src.rstrip("/")) or info.get("name", "")
    if os.path.isdir(dest):
        where, new = dest, None
    else:
        if dest.endswith("/"):
            sys.stderr.write("Error: no such directory: %s\n" % dest)
            return 1
        where, new = os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
        if base == ".":
            os.makedirs(dest)
            where, new = dest, None
    with tarfile.open(fileobj=_Reader(resp), mode="r|") as tar:
        tar.extractall(where, members=_safe_members(tar, base, new), numeric_owner=True)
    return 0


def parser_cp(p):
    """Flags of `berth cp`."""
    p.add_argument("-a", "--archive", action="store_true", help="keep uid/gid (always kept)")
    p.add_argument("-L", "--follow-link", action="store_true", help="follow a symlink SRC")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")


def cmd_cp(client, args):
    """`berth cp CONTAINER:SRC DEST` or `berth cp SRC CONTAINER:DEST`."""
    src_name, src = _split(args.src)
    dest_name, dest = _split(args.dest)
    if bool(src_name) == bool(dest_name):
        sys.stderr.write("berth: copying between containers or between local paths is not "
                         "supported: one of SRC and DEST must be CONTAINER:PATH\n")
        return 1
    if dest_name:
        return _copy_in(client, src, dest_name, dest)
    if args.follow_link:
        info = _stat(client, src_name, src)
        if info and info.get("linkTarget"):
            src = info["linkTarget"]
    return _copy_out(client, src_name, src, dest)


def parser_diff(p):
    """Flags of `berth diff`."""
    p.add_argument("container")


def cmd_diff(client, args):
    """`berth diff`: C (changed), A (added), D (deleted) paths of the writable layer."""
    for change in client.get("/containers/%s/changes" % args.container) or []:
        sys.stdout.write("%s %s\n" % ("CAD"[change["Kind"]], change["Path"]))
    return 0


def parser_export(p):
    """Flags of `berth export`."""
    p.add_argument("-o", "--output", help="write to a file instead of stdout")
    p.add_argument("container")


def cmd_export(client, args):
    """`berth export`: the container's filesystem as a tar."""
    if not args.output and sys.stdout.isatty():
        sys.stderr.write("berth: refusing to write a tar to a terminal: use -o FILE or a redirect\n")
        return 1
    resp = client.send("GET", "/containers/%s/export" % args.container)
    out = open(args.output, "wb") if args.output else sys.stdout.buffer
    try:
        for chunk in resp.chunks():
            out.write(chunk)
    finally:
        if args.output:
            out.close()
    return 0
