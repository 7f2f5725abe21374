"""A read-only view of an image's filesystem straight from its unpacked layer directories, as
overlayfs would merge them (whiteouts as overlay's devices or the vfs driver's `.wh.` marker
files, opaque directories), without mounting anything.
It has the same reading interface as context.Context, so COPY --from reads either."""

import os
import stat

from runtime.build.context import Entry, resolve
from runtime.store.unpack import OPAQUE_XATTR


def _entry(st, path):
    # type: (os.stat_result, str) -> Entry
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind, link = "file", ""
    elif stat.S_ISDIR(mode):
        kind, link = "dir", ""
    elif stat.S_ISLNK(mode):
        kind, link = "symlink", os.readlink(path)
    else:
        kind, link = "other", ""
    return Entry(kind, stat.S_IMODE(mode), st.st_uid, st.st_gid, st.st_size if kind == "file"
                 else 0, int(st.st_mtime), link)


def _whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path):
    # overlay's xattr, or the marker file the vfs driver unpacks
    if os.path.lexists(os.path.join(path, ".wh..wh..opq")):
        return True
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class RootView(object):
    """The merged tree of layer dirs (LOWEST first, as ImageStore.layer_dirs gives them)."""

    def __init__(self, layer_dirs):
        # type: (list) -> None
        self.layers = list(reversed(layer_dirs))  # topmost first

    @staticmethod
    def _walk_dirs(top, parts):
        # type: (str, list) -> tuple
        """How the directory parts look in one layer, without following any symlink:
        ("absent", _) when a part is missing there, ("hidden", _) when a part is whited out
        or not a directory (nothing below it in this or lower layers), ("dir", opaque) with
        opaque True when one of them is an opaque dir (lower layers do not count)."""
        cur, opaque = top, False
        for p in parts:
            if os.path.lexists(os.path.join(cur, ".wh." + p)):
                return "hidden", False
            cur = os.path.join(cur, p)
            try:
                st = os.lstat(cur)
            except OSError:
                return "absent", opaque
            if not stat.S_ISDIR(st.st_mode):
                return "hidden", False
            opaque = opaque or _opaque(cur)
        return "dir", opaque

    def _find(self, path):
        # type: (str) -> tuple
        """(layer dir, lstat) of the topmost layer holding path, or (None, None)."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return (self.layers[0], os.lstat(self.layers[0])) if self.layers else (None, None)
        for top in self.layers:
            state, opaque = self._walk_dirs(top, parts[:-1])
            if state == "hidden":
                return None, None
            if state == "dir":
                full = os.path.join(top, *parts)
                try:
                    st = os.lstat(full)
                except OSError:
                    st = None
                if st is not None:
                    return (None, None) if _whiteout(st) else (top, st)
                if os.path.lexists(os.path.join(top, *(parts[:-1] + [".wh." + parts[-1]]))):
                    return None, None
            if opaque:
                return None, None
        return None, None

    def lstat(self, path):
        # type: (str) -> Entry
        """The entry at path or None."""
        top, st = self._find(path)
        if top is None:
            return None
        return _entry(st, os.path.join(top, path))

    def listdir(self, path):
        # type: (str) -> list
        """Names in the directory, merged over the layers, sorted."""
        parts = [p for p in path.split("/") if p]
        seen, hidden = set(), set()
        for top in self.layers:
            state, opaque = self._walk_dirs(top, parts)
            if state == "hidden":
                break
            if state == "absent":
                if opaque:
                    break
                continue
            full = os.path.join(top, *parts) if parts else top
            for n in os.listdir(full):
                if n.startswith(".wh."):
                    if n != ".wh..wh..opq":
                        hidden.add(n[4:])
                    continue
                if n in hidden or n in seen:
                    continue
                try:
                    if _whiteout(os.lstat(os.path.join(full, n))):
                        hidden.add(n)
                        continue
                except OSError:
                    continue
                seen.add(n)
            if opaque:
                break
        return sorted(seen)

    def realpath(self, path):
        # type: (str) -> str
        """path with symlinks resolved within the image's root."""
        return resolve(self, path)

    def host_path(self, path):
        # type: (str) -> str
        """The layer file that holds path."""
        top, _ = self._find(path)
        if top is None:
            raise FileNotFoundError(path)
        return os.path.join(top, path)

    def read(self, path):
        # type: (str) -> bytes
        """The content of the file at path ("" when missing)."""
        try:
            with open(self.host_path(path), "rb") as f:
                return f.read()
        except OSError:
            return b""

    def open(self, path):
        """The file opened for binary reading."""
        return open(self.host_path(path), "rb")
