"""The engine artifact: the stdlib-only ``runtime`` package as one zipapp that runs on the
target's own python3 (3.6 on CentOS 7).

``berth-<version>.pyz`` holds ``runtime/**.py``, a ``BERTH_BUNDLE`` marker (version and build
id) and a ``__main__`` that dispatches on its first argument (or argv[0]) to ``berth`` or
``berthd``. The zip is byte-for-byte reproducible (sorted entries, fixed timestamps), so its
sha256 is the build id and an unchanged engine is never reinstalled.

On the target the zip is extracted (``python3 -m zipfile -e``) and byte-compiled into
``/usr/local/lib/berth/<version>-<id>/``, ``current`` points at it, and two small wrappers in
/usr/local/bin run it: imports then come from cached .pyc files, not from the zip.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from provision.errors import InputError
from provision.render import render

LIB_DIR = "/usr/local/lib/berth"
BIN_DIR = "/usr/local/bin"
PYTHON = "/usr/bin/python3"
MARKER = "BERTH_BUNDLE"
_EPOCH = (1980, 1, 1, 0, 0, 0)

MAIN = '''\
"""berth bundle entry: `python3 berth.pyz berth|berthd ARGS`, or named berth/berthd."""
import os
import sys


def main():
    args = sys.argv[1:]
    prog = os.path.basename(sys.argv[0])
    if args and args[0] in ("berth", "berthd"):
        prog = args.pop(0)
    elif prog not in ("berth", "berthd"):
        prog = "berth"
    sys.argv = [prog] + args
    if prog == "berthd":
        from runtime.daemon.main import main as entry
        sys.exit(entry(args))
    from runtime.cli.main import cli
    cli()


if __name__ == "__main__":
    main()
'''


@dataclass
class Bundle:
    """A built bundle: its bytes, version and build id (first 12 hex of its sha256)."""

    data: bytes
    version: str
    sha256: str

    @property
    def build_id(self) -> str:
        return self.sha256[:12]

    @property
    def filename(self) -> str:
        return f"berth-{self.version}.pyz"

    @property
    def install_dir(self) -> str:
        """Where the extracted, byte-compiled engine lives on the target."""
        return f"{LIB_DIR}/{self.version}-{self.build_id}"

    @property
    def marker(self) -> dict:
        return {"version": self.version, "build": self.build_id}


def runtime_dir() -> Path:
    """The ``runtime`` package shipped with provision (the repo checkout or installed copy)."""
    try:
        import runtime
    except ImportError:
        raise InputError(
            "the runtime package is not installed next to provision: cannot build the engine"
        ) from None
    return Path(runtime.__file__).resolve().parent


def runtime_version(src: Path | None = None) -> str:
    """``__version__`` of the runtime package (read from its source, not imported)."""
    text = ((src or runtime_dir()) / "__init__.py").read_text()
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
    if not m:
        raise InputError("runtime/__init__.py has no __version__ line")
    return m.group(1)


def _sources(src: Path) -> list[tuple[str, bytes]]:
    files = []
    for p in sorted(src.rglob("*.py")):
        rel = p.relative_to(src)
        if "__pycache__" in rel.parts:
            continue
        files.append(("runtime/" + rel.as_posix(), p.read_bytes()))
    return files


def build(version: str | None = None, src: Path | None = None) -> Bundle:
    """Build the bundle in memory. ``version`` overrides ``runtime.__version__`` (tests build
    an "older" engine this way)."""
    src = src or runtime_dir()
    version = version or runtime_version(src)
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]*", version):
        raise InputError(f"bad engine version {version!r}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)

        add("__main__.py", MAIN.encode())
        for name, data in _sources(src):
            if name == "runtime/__init__.py":
                data = re.sub(
                    rb"^__version__\s*=.*$", f'__version__ = "{version}"'.encode(), data, count=1, flags=re.M
                )
            add(name, data)
        add(MARKER, (json.dumps({"version": version}) + "\n").encode())
    data = buf.getvalue()
    return Bundle(data, version, hashlib.sha256(data).hexdigest())


def marker_text(b: Bundle) -> str:
    """What ``<install_dir>/BERTH_INSTALLED`` holds once an install completed."""
    return json.dumps(b.marker, sort_keys=True)


def wrapper(prog: str) -> bytes:
    """/usr/local/bin/berth or berthd (``templates/berth-wrapper.j2``, which the Ansible role
    renders too): a python3 script that runs the installed engine with the system python3,
    isolated (-I: no PYTHON* variables, no user site, not its own directory on sys.path) and
    without `site` (-S: the engine is stdlib-only, and site's .pth processing is a third of a
    short command's start-up). It imports the entry module itself rather than running the
    bundle's __main__ (running a directory imports runpy and importlib.util: ~8 ms of every
    `berth` command). One shebang argument: the flags are combined, "-IS"."""
    return render("berth-wrapper.j2", {"python": PYTHON, "lib_dir": LIB_DIR, "prog": prog})


# where Transport.upload(data, "bundle") stages a bundle (transport.STAGE_PREFIX + "bundle-")
STALE_UPLOADS = "/tmp/.berth-bundle-*"


def install_script(b: Bundle, staged: str, stale_uploads: str = STALE_UPLOADS) -> str:
    """sh (as root) that turns the uploaded zip at ``staged`` into the installed engine
    (``templates/install-bundle.sh.j2``, which the Ansible role runs too): extract +
    byte-compile into a temp dir, rename into place, switch ``current``, and keep only the
    previous version besides the new one (its monitors may still be running). Bundles left
    by killed runs under ``stale_uploads`` (a glob) are removed."""
    v = {
        "stale_uploads": stale_uploads,
        "lib_dir": LIB_DIR,
        "python": PYTHON,
        "staged": staged,
        "filename": b.filename,
        "install_dir": b.install_dir,
        "version": b.version,
        "build_id": b.build_id,
        "marker": marker_text(b),
    }
    return render("install-bundle.sh.j2", v).decode()
