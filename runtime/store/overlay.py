"""Mounting an image's layers with overlayfs, within the 4096-byte mount-option limit.

`ImageStore.mount_lowerdir_option(image_id)` gives (base_dir, "l/<top>:...:l/<bottom>") with
short relative names; `mount_overlay` chdirs to base_dir just for the mount(2) call so the
kernel resolves them. chdir is process-wide: call it from a single-threaded process (e.g. the
container's own child after fork) or where no other thread uses relative paths meanwhile.
"""

import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2
PAGE = 4096


def mount_overlay(target, base_dir, lowerdir, upper=None, work=None, extra=""):
    # type: (str, str, str, str, str, str) -> None
    """Mount overlay on target: lowerdir relative to base_dir (topmost first); with upper and
    work (absolute paths) it is writable, without them read-only. Raises OSError."""
    opts = "lowerdir=" + lowerdir
    if upper:
        opts += ",upperdir=%s,workdir=%s" % (os.path.abspath(upper), os.path.abspath(work))
    if extra:
        opts += "," + extra
    if len(opts) >= PAGE:
        raise OSError(7, "overlay mount options are %d bytes, over the %d-byte page limit"
                      % (len(opts), PAGE))
    target = os.fsencode(os.path.abspath(target))
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(base_dir)
        if _libc.mount(b"overlay", target, b"overlay", 0,
                       opts.encode()) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "mount overlay on %s: %s" % (os.fsdecode(target), os.strerror(e)))
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def umount(target, detach=False):
    # type: (str, bool) -> None
    """Unmount target (lazily when detach)."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH if detach else 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "umount %s: %s" % (target, os.strerror(e)))
