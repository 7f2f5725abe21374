"""Which storage driver the engine uses: overlay2 (layers shared through overlay mounts) or vfs
(a full copy per container, for data roots that cannot hold an overlay upper directory).

daemon.json `storage-driver`: "overlay2" or "vfs" forces one; absent or "" chooses at start,
as dockerd does: a probe mounts a tiny overlay whose upper and work dirs are in the data root
and makes an overlay whiteout there; whatever fails means vfs, with a warning saying why.

The driver that made a store is recorded in `<store>/driver`: layers are unpacked differently
(overlay whiteouts vs marker files) and containers' roots differ (upper dir vs copy), so a
store made by one driver is refused by the other, naming both and what to do.
"""

import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import tempfile

from runtime.atomicfile import write_text
from runtime.errors import InvalidParameter
from runtime.store import overlay

OVERLAY2 = "overlay2"
VFS = "vfs"
DRIVERS = (OVERLAY2, VFS)
VFS_COST = "a full copy per container: slow, more disk"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_char_p]

# statfs f_type -> name (linux/magic.h)
_FS_NAMES = {0x794c7630: "overlayfs", 0x6969: "nfs", 0xEF53: "ext4", 0x58465342: "xfs",
             0x01021994: "tmpfs", 0x9123683E: "btrfs", 0x2FC12FC1: "zfs", 0x65735546: "fuse",
             0xFF534D42: "cifs", 0xFE534D42: "smb2", 0xF15F: "ecryptfs", 0x61756673: "aufs",
             0x858458F6: "ramfs", 0x73717368: "squashfs", 0x5346544E: "ntfs", 0x4D44: "vfat"}


class Choice(object):
    """The driver in use and the warning `info` shows about it (or None)."""

    def __init__(self, name, warning=None):
        # type: (str, object) -> None
        self.name = name
        self.warning = warning


def check_name(value):
    # type: (object) -> str
    """The configured driver ("" = choose); InvalidParameter naming any other value."""
    if value in (None, ""):
        return ""
    if value not in DRIVERS:
        raise InvalidParameter("storage-driver %r is not supported: use overlay2 or vfs (or leave "
                               "it out to choose at start)" % (value,))
    return str(value)


def filesystem(path):
    # type: (str) -> str
    """The name of the filesystem path is on (statfs), e.g. "ext4", "overlayfs"."""
    buf = ctypes.create_string_buffer(256)
    if _libc.statfs(os.fsencode(path), buf) != 0:
        return "unknown"
    magic = ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    return _FS_NAMES.get(magic, "filesystem 0x%x" % magic)


def probe_overlay(data_root, tmp_dir):
    # type: (str, str) -> object
    """None when overlay can work with its upper dir in tmp_dir (on the data root's
    filesystem), else the reason as one phrase naming data_root."""
    os.makedirs(tmp_dir, exist_ok=True)
    fs = filesystem(tmp_dir)
    if fs == "overlayfs":
        return ("the data root %s is on overlayfs, which cannot hold an overlay upper directory"
                % data_root)
    base = tempfile.mkdtemp(prefix="probe-%d-" % os.getpid(), dir=tmp_dir)
    try:
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(base, d))
        with open(os.path.join(base, "lower", "f"), "w") as f:
            f.write("x")
        try:
            os.mknod(os.path.join(base, "upper", "wh"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
            os.setxattr(os.path.join(base, "upper"), "trusted.overlay.opaque", b"y")
            os.removexattr(os.path.join(base, "upper"), "trusted.overlay.opaque")
            os.unlink(os.path.join(base, "upper", "wh"))
        except OSError as e:
            return ("the data root %s (on %s) cannot hold overlay whiteouts (%s)"
                    % (data_root, fs, os.strerror(e.errno or errno.EINVAL)))
        merged = os.path.join(base, "merged")
        try:
            overlay.mount_overlay(merged, base, "lower", os.path.join(base, "upper"),
                                  os.path.join(base, "work"))
        except OSError as e:
            return ("overlay cannot be mounted with its upper directory in the data root %s "
                    "(on %s): %s" % (data_root, fs, os.strerror(e.errno or errno.EINVAL)))
        try:
            with open(os.path.join(merged, "f"), "a") as f:  # a copy-up into the upper dir
                f.write("y")
        except OSError as e:
            return ("overlay with its upper directory in the data root %s (on %s) cannot copy "
                    "files up: %s" % (data_root, fs, os.strerror(e.errno or errno.EINVAL)))
        finally:
            overlay.umount(merged, detach=True)
        return None
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _recorded(store_root):
    # type: (str) -> object
    """The driver that made the store: its record, "overlay2" for a store with layers but no
    record (made before drivers were recorded), None for an empty store."""
    try:
        with open(os.path.join(store_root, "driver")) as f:
            name = f.read().strip()
    except FileNotFoundError:
        name = ""
    layers = os.path.join(store_root, "layers")
    if not (os.path.isdir(layers) and os.listdir(layers)):
        return None  # nothing unpacked yet: any driver can start it
    return name or OVERLAY2


def recorded(store_root):
    # type: (str) -> object
    """The driver that made the store at store_root ("overlay2" or "vfs"), None when empty."""
    return _recorded(store_root)


def _record(store_root, name):
    # type: (str, str) -> None
    os.makedirs(store_root, exist_ok=True)
    path = os.path.join(store_root, "driver")
    try:
        with open(path) as f:
            if f.read().strip() == name:
                return
    except FileNotFoundError:
        pass
    write_text(path, name + "\n", durable=True)


def _mismatch(store_root, made_by, wanted):
    # type: (str, str, str) -> InvalidParameter
    return InvalidParameter(
        "the image store %s was made by the %s storage driver and cannot be used with %s: set "
        "\"storage-driver\": \"%s\" in daemon.json (or leave it out), or move the data root aside "
        "to start empty" % (store_root, made_by, wanted, made_by))


def choose(data_root, store_root, configured):
    # type: (str, str, object) -> Choice
    """The driver for the store at store_root under data_root, given daemon.json's value;
    records it in the store. InvalidParameter (one line, saying what to do) when the
    configured driver cannot work there."""
    configured = check_name(configured)
    made_by = _recorded(store_root)
    tmp_dir = os.path.join(store_root, "tmp")
    if configured == VFS:
        if made_by == OVERLAY2:
            raise _mismatch(store_root, made_by, VFS)
        choice = Choice(VFS, "the vfs storage driver is set in the daemon configuration "
                             "(storage-driver): %s" % VFS_COST)
    elif configured == OVERLAY2:
        if made_by == VFS:
            raise _mismatch(store_root, made_by, OVERLAY2)
        reason = probe_overlay(data_root, tmp_dir)
        if reason:
            raise InvalidParameter("storage-driver overlay2 cannot work: %s. Put the data root on "
                                   "ext4 or xfs, or set \"storage-driver\": \"vfs\" (or leave it "
                                   "out to fall back to vfs)" % reason)
        choice = Choice(OVERLAY2)
    else:
        reason = probe_overlay(data_root, tmp_dir)
        if made_by == OVERLAY2 and reason:
            raise InvalidParameter("the image store %s was made by the overlay2 storage driver, "
                                   "which cannot work here now: %s. Put the data root on ext4 or "
                                   "xfs, or move it aside to start empty with vfs"
                                   % (store_root, reason))
        if reason:
            choice = Choice(VFS, "%s: using the vfs storage driver (%s). Put the data root on "
                                 "ext4 or xfs to use overlay2." % (reason, VFS_COST))
        elif made_by == VFS:
            choice = Choice(VFS, "the image store %s was made by the vfs storage driver: using "
                                 "vfs (%s). Start with an empty data root to use overlay2."
                            % (store_root, VFS_COST))
        else:
            choice = Choice(OVERLAY2)
    _record(store_root, choice.name)
    return choice
