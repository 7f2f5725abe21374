"""`berth build`: the context directory (minus .dockerignore's exclusions) as a tar to
`POST /build`, the daemon's progress printed as it comes."""

import os
import sys
import stat
import struct
import tempfile

from runtime.cli import fmt
from runtime.cli import jsonfast as json
from runtime.cli.client import APIError
from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, List  # noqa: F401


def parser_build(p):
    """Flags of `berth build`."""
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--target")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--network")
    p.add_argument("path", metavar="PATH|-")


def _is_tar(head):
    # type: (bytes) -> bool
    return head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


_HEAD = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")


_CONST_SUM = sum(b"0000000\0" * 2 + b" " * 8 + b"ustar\0" + b"00")


def _block(name, mode, size, mtime, kind, link=b""):
    # type: (bytes, int, int, int, bytes, bytes) -> bytes
    fields = (b"%07o\0" % mode, b"%011o\0" % size, b"%011o\0" % max(0, mtime))
    chk = _CONST_SUM + sum(name) + sum(fields[0]) + sum(fields[1]) + sum(fields[2]) + \
        kind[0] + sum(link)  # the header's checksum without summing its 512 bytes
    return _HEAD.pack(name, fields[0], b"0000000\0", b"0000000\0", fields[1], fields[2],
                      b"%06o\0 " % chk, kind, link, b"ustar\0", b"00", b"", b"", b"", b"", b"")


def _pad(n):
    # type: (int) -> bytes
    return b"\0" * (-n % 512)


def tar_entry(out, name, mode, size, mtime, kind, link=""):
    # type: (Any, str, int, int, int, bytes, str) -> None
    """One ustar header (GNU long-name records for names over 100 bytes), owners 0:0 as
    docker's client sends them; the caller writes the data and its padding."""
    nb = name.encode("utf-8", "surrogateescape")
    lb = link.encode("utf-8", "surrogateescape")
    for data, flag in ((lb, b"K"), (nb, b"L")):
        if len(data) > 100:
            out.write(_block(b"././@LongLink", 0o644, len(data) + 1, 0, flag) + data + b"\0"
                      + _pad(len(data) + 1))
    out.write(_block(nb[:100], mode, size, mtime, kind, lb[:100]))


def _read_all(fd, data):
    # type: (int, bytes) -> bytes
    parts = [data]
    while True:
        more = os.read(fd, 1 << 20)
        if not more:
            return b"".join(parts)
        parts.append(more)


def _add_tree(out, root, matcher, keep):
    # type: (Any, str, Any, set) -> None
    """Every file under root not excluded (keep: names always sent)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        for name in sorted(filenames + dirnames):
            rel = (rel_dir + "/" + name) if rel_dir else name
            full = os.path.join(dirpath, name)
            if matcher is not None and rel not in keep and matcher.excluded(rel):
                if name in dirnames and not matcher.has_exceptions:
                    dirnames.remove(name)
                continue
            st = os.lstat(full)
            mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
            if stat.S_ISREG(st.st_mode):
                fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    data = os.read(fd, st.st_size + 1) if st.st_size < (1 << 24) else b""
                    if len(data) != st.st_size:
                        data = _read_all(fd, data)
                finally:
                    os.close(fd)
                tar_entry(out, rel, mode, len(data), mtime, b"0")
                out.write(data + _pad(len(data)))
            elif stat.S_ISDIR(st.st_mode):
                tar_entry(out, rel + "/", mode, 0, mtime, b"5")
            elif stat.S_ISLNK(st.st_mode):
                tar_entry(out, rel, 0o777, 0, mtime, b"2", os.readlink(full))


def _add_bytes(out, name, data):
    # type: (Any, str, bytes) -> None
    tar_entry(out, name, 0o644, len(data), 0, b"0")
    out.write(data + _pad(len(data)))


def context_tar(path, dockerfile, out):
    # type: (str, str, Any) -> str
    """Write the context tar of directory path to out; returns the `dockerfile` parameter.
    A Dockerfile outside the context (or `-f -`) is sent in the tar under its own name."""
    from runtime.build import ignore
    matcher = None
    ig = os.path.join(path, ".dockerignore")
    if os.path.isfile(ig):
        with open(ig) as f:
            matcher = ignore.Matcher(ignore.read_patterns(f.read()))
    name = "Dockerfile"
    extra = None
    if dockerfile == "-":
        extra = sys.stdin.buffer.read()
    elif dockerfile:
        full = os.path.abspath(dockerfile)
        rel = os.path.relpath(full, os.path.abspath(path))
        if rel.startswith(".."):
            with open(full, "rb") as f:
                extra = f.read()
        else:
            name = rel.replace(os.sep, "/")
    if extra is not None:
        name = ".dockerfile.%s" % os.urandom(10).hex()
    _add_tree(out, path, matcher, {name, ".dockerignore"})
    if extra is not None:
        _add_bytes(out, name, extra)
    out.write(b"\0" * 1024)
    return name


def _build_args(items):
    # type: (List[str]) -> dict
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if eq:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


def cmd_build(client, args):
    """`berth build [-t NAME]... [-f FILE] [--build-arg K=V] ... PATH|-`."""
    labels = {}
    for item in args.label:
        k, _, v = item.partition("=")
        labels[k] = v
    query = [("t", t) for t in args.tag]
    query += [("buildargs", json.dumps(_build_args(args.build_arg))), ("rm", "1"),
              ("labels", json.dumps(labels)), ("target", args.target), ("nocache", args.no_cache),
              ("pull", args.pull), ("q", args.quiet), ("networkmode", args.network)]
    with tempfile.TemporaryFile() as body:
        try:
            if args.path == "-":
                data = sys.stdin.buffer.read()
                if _is_tar(data[:512]):
                    body.write(data)
                    dockerfile = args.file or "Dockerfile"
                else:
                    _add_bytes(body, "Dockerfile", data)
                    body.write(b"\0" * 1024)
                    dockerfile = "Dockerfile"
            else:
                if not os.path.isdir(args.path):
                    sys.stderr.write("berth: unable to prepare context: path %r not found\n"
                                     % args.path)
                    return 1
                dockerfile = context_tar(args.path, args.file, body)
        except OSError as exc:
            sys.stderr.write("berth: unable to prepare context: %s\n" % exc)
            return 1
        body.seek(0)
        query.append(("dockerfile", dockerfile))
        image_id = ""
        try:
            resp = client.send("POST", "/build", query, body=body,
                               headers={"Content-Type": "application/x-tar"})
            progress = fmt.Progress(sys.stderr if args.quiet else sys.stdout)
            for msg in resp.json_stream():
                aux = msg.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = aux["ID"]
                    continue
                if args.quiet and "stream" in msg:
                    continue
                progress.show(msg)
        except (APIError, fmt.StreamError) as exc:
            prefix = "Error response from daemon: " if isinstance(exc, APIError) else ""
            sys.stderr.write("%s%s\n" % (prefix, exc))
            return 1
    if args.quiet and image_id:
        print(image_id)
    return 0
