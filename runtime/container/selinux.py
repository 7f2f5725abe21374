"""SELinux labels for containers, decided as dockerd decides them with `selinux-enabled`: each
container's processes run with the policy's container process label (container_t on an EL
host with container-selinux) and a level of two MCS categories no other container has, and its
root, /dev and tmpfs mounts are mounted with the matching file label (`context=`); `-v SRC:DST:z`
relabels SRC with the label every container shares (level s0), `:Z` with the container's own.

The labels come from the policy's lxc_contexts (container-selinux ships it), as go-selinux
reads them: without that file, or on a host whose kernel has no SELinux policy loaded, berth
labels nothing (and refuses `--security-opt label=...` but `disable`, saying why). This module
decides labels and writes file labels; PID 1 and exec'd processes ask for their process label
on their execve (runtime/container/proc/init.py)."""

import errno
import os
import random
import re
import threading

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple  # noqa: F401

SELINUXFS = "/sys/fs/selinux"
CONFIG = "/etc/selinux/config"
XATTR = "security.selinux"
CATEGORIES = 1024  # c0..c1023, as go-selinux allocates them
OPTION_KEYS = ("user", "role", "type", "level", "filetype")
# what a relabel (`:z`, `:Z`) never touches: the host's system dirs (go-selinux's list)
EXCLUDED = frozenset(("/", "/bin", "/boot", "/dev", "/etc", "/etc/passwd", "/etc/pki", "/etc/shadow",
                      "/home", "/lib", "/lib64", "/media", "/opt", "/proc", "/root", "/run", "/sbin",
                      "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log"))
_LINE = re.compile(r'^\s*([A-Za-z_]+)\s*=\s*"?([^"]*)"?\s*$')


def host_enabled(selinuxfs=SELINUXFS):
    # type: (str) -> bool
    """Whether the kernel runs SELinux with a policy loaded: selinuxfs is mounted and this
    process has a label other than the initial "kernel" (go-selinux's test)."""
    if not os.path.exists(os.path.join(selinuxfs, "enforce")):
        return False
    try:
        with open("/proc/self/attr/current") as f:
            current = f.read().strip("\x00\n ")
    except OSError:
        return False
    return bool(current) and current != "kernel"


def policy_root(config=CONFIG):
    # type: (str) -> str
    """/etc/selinux/<SELINUXTYPE> of /etc/selinux/config (targeted when it says none)."""
    kind = "targeted"
    try:
        with open(config) as f:
            for line in f:
                m = _LINE.match(line.strip())
                if m and m.group(1) == "SELINUXTYPE" and m.group(2):
                    kind = m.group(2)
    except OSError:
        pass
    return os.path.join(os.path.dirname(config), kind)


def read_contexts(path):
    # type: (str) -> Dict[str, str]
    """An lxc_contexts file: {"process": label, "file": label, "ro_file": label, ...}."""
    out = {}  # type: Dict[str, str]
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0]
            m = _LINE.match(line.strip())
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def split(label):
    # type: (str) -> Dict[str, str]
    """user:role:type[:level] -> {"user", "role", "type", "level"} (the level may hold ':')."""
    parts = label.split(":", 3)
    if len(parts) < 3 or not all(parts[:3]):
        raise ValueError("not an SELinux label: %r" % label)
    return {"user": parts[0], "role": parts[1], "type": parts[2], "level": parts[3] if len(parts) > 3 else ""}


def join(con):
    # type: (Dict[str, str]) -> str
    """The inverse of split()."""
    out = "%s:%s:%s" % (con["user"], con["role"], con["type"])
    return out + (":" + con["level"] if con.get("level") else "")


def level_of(label):
    # type: (str) -> str
    """The MLS/MCS level of a label ("" for none or an empty label)."""
    return split(label)["level"] if label else ""


class Labeler(object):
    """The host's container labels (from lxc_contexts) and the MCS levels containers hold."""

    def __init__(self, process, file, rng=None):
        # type: (str, str, Optional[random.Random]) -> None
        self.process = process
        self.file = file
        self.taken = {}  # type: Dict[str, int]  # level -> containers holding it
        self.lock = threading.Lock()  # creates run on several request threads
        self.rng = rng or random.SystemRandom()

    @classmethod
    def at_start(cls, wanted, selinuxfs=SELINUXFS, config=CONFIG):
        # type: (bool, str, str) -> Tuple[Optional[Labeler], str]
        """(a Labeler or None, why none when SELinux labelling was asked for): daemon.json
        selinux-enabled (wanted), the kernel's SELinux and the policy's lxc_contexts."""
        if not wanted:
            return None, ""
        if not host_enabled(selinuxfs):
            return None, ("selinux-enabled is set but this kernel runs no SELinux policy: "
                          "containers get no labels")
        path = os.path.join(policy_root(config), "contexts", "lxc_contexts")
        try:
            ctx = read_contexts(path)
        except OSError as e:
            return None, ("selinux-enabled is set but %s cannot be read (%s): install the "
                          "container-selinux policy (provision host does); containers get no labels"
                          % (path, e.strerror))
        try:
            split(ctx.get("process", "")), split(ctx.get("file", ""))
        except ValueError:
            return None, "%s names no process and file labels: containers get no labels" % path
        return cls(ctx["process"], ctx["file"]), ""

    def reserve(self, label):
        # type: (str) -> None
        """Mark a container's level as held (at create, and for containers found at start)."""
        level = level_of(label)
        if level:
            with self.lock:
                self._hold(level)

    def _hold(self, level):
        # type: (str) -> None
        self.taken[level] = self.taken.get(level, 0) + 1  # (self.lock held)

    def release(self, label):
        # type: (str) -> None
        """Give a removed container's level back (once the last holder is gone)."""
        level = level_of(label)
        with self.lock:
            left = self.taken.get(level, 0) - 1
            if left > 0:
                self.taken[level] = left
            else:
                self.taken.pop(level, None)

    def _unique_level(self, base):
        # type: (str) -> str
        sens = (base.split(":", 1)[0] if base else "") or "s0"
        for _ in range(10000):
            a, b = self.rng.sample(range(CATEGORIES), 2)
            level = "%s:c%d,c%d" % (sens, min(a, b), max(a, b))
            if level not in self.taken:
                return level
        raise InvalidParameter("no free SELinux MCS category pair is left: remove containers")

    def labels(self, options):
        # type: (List[str]) -> Tuple[str, str]
        """(process label, mount label) for a new container given its `label` options (the
        values of --security-opt label=...; "disable" turns the process label off, as
        go-selinux's InitLabels does); the level is reserved until release()."""
        check_options(options)
        if "disable" in options:
            return "", self.shared_file_label()
        pcon, mcon = split(self.process), split(self.file)
        with self.lock:  # chosen and held in one step
            pcon["level"] = mcon["level"] = self._unique_level(pcon["level"])
            for opt in options:
                key, _, value = opt.partition(":")
                if key == "filetype":
                    mcon["type"] = value
                    continue
                pcon[key] = value
                if key in ("level", "user"):
                    mcon[key] = value
            self._hold(pcon["level"])
        return join(pcon), join(mcon)

    def shared_file_label(self):
        # type: () -> str
        """The file label every container may read and write (`:z`, label=disable's root)."""
        return shared_label(self.file)


def check_options(options):
    # type: (Iterable[str]) -> None
    """InvalidParameter for a label option dockerd would refuse (valid: disable, or
    user|role|type|level|filetype:VALUE)."""
    for opt in options:
        if opt == "disable":
            continue
        key, sep, value = opt.partition(":")
        if not sep or key not in OPTION_KEYS or not value:
            raise InvalidParameter("Bad label option %r, valid options 'disable' or 'user, role, level, "
                                   "type, filetype' followed by ':' and a value (--security-opt "
                                   "label=type:container_t)" % opt)


def duplicate(label):
    # type: (str) -> List[str]
    """Label options that give another container's process label (--ipc/--pid container:)."""
    if not label:
        return []
    con = split(label)
    return ["%s:%s" % (k, con[k]) for k in ("user", "role", "type", "level") if con[k]]


def shared_label(label):
    # type: (str) -> str
    """label at its sensitivity alone (s0, no categories): shared by every container."""
    con = split(label)
    con["level"] = (con["level"].split(":", 1)[0] if con["level"] else "") or "s0"
    return join(con)


def check_relabel(path):
    # type: (str) -> str
    """path resolved; InvalidParameter when it is one of the host's system dirs (or a home)."""
    real = os.path.realpath(path)
    if real in EXCLUDED or real.startswith("/home/") and real.count("/") == 2:
        raise InvalidParameter("SELinux relabeling of %s is not allowed: give a path of its own "
                               "(not a system directory) or leave out :z/:Z" % path)
    return real


def relabel(path, label, is_shared):
    # type: (str, str, bool) -> None
    """Label path and everything under it (`-v path:dst:z` when shared, `:Z` otherwise; symlinks
    themselves, never what they point to). Refuses the host's system dirs; a filesystem that
    keeps no labels (EOPNOTSUPP) is left as it is, as dockerd does."""
    if not label:
        return
    real = check_relabel(path)
    value = (shared_label(label) if is_shared else label).encode()
    try:
        _set(real, value)
        for top, dirs, files in os.walk(real):
            for name in dirs + files:
                _set(os.path.join(top, name), value)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            return
        raise InvalidParameter("cannot relabel %s for SELinux (%s): check its filesystem keeps "
                               "labels, or leave out :z/:Z" % (path, e.strerror)) from None


def _set(path, value):
    # type: (str, bytes) -> None
    try:
        if os.getxattr(path, XATTR, follow_symlinks=False).rstrip(b"\x00") == value:
            return  # already so: no write, no change of ctime
    except OSError:
        pass
    os.setxattr(path, XATTR, value, follow_symlinks=False)


def label_volume(path, label):
    # type: (str, str) -> None
    """Relabel a volume's directory tree with label unless its top already has label's type
    (a volume labelled once, or by `:Z`, keeps its labels)."""
    try:
        current = os.getxattr(path, XATTR).rstrip(b"\x00").decode()
        if split(current)["type"] == split(label)["type"]:
            return
    except (OSError, ValueError):
        pass
    relabel(path, label, True)


def label_file(path, label):
    # type: (str, str) -> None
    """Label one file (a container's /etc/hostname, hosts, resolv.conf) when there is a label."""
    if label:
        try:
            _set(path, label.encode())
        except OSError as e:
            if e.errno != errno.EOPNOTSUPP:
                raise
