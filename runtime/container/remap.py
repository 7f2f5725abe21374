"""daemon.json `userns-remap` -> the uid/gid maps of remapped containers, and the files their
remapped root must own.

`default` is the `berth` user (made with useradd when it is missing, with 65,536 subordinate
ids from 100000 up in /etc/subuid and /etc/subgid); `USER`, `USER:GROUP`, `UID` or `UID:GID`
name an existing user, whose ranges in /etc/subuid and /etc/subgid become container ids 0, 1,
2... in order. The environment variable BERTH_ID_ROOT moves /etc/passwd, /etc/group,
/etc/subuid and /etc/subgid under another root (tests; useradd gets --prefix).

The image layers are shown to a remapped root through idmapped mounts when the kernel can put
them under an overlay (runtime/container/proc/userns.py, probed once per data root), else
through a copy of each layer with shifted owners, made once per remap and layer under
`<data-root>/<uid>.<gid>/layers/` and shared by every container of that remap.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from runtime import TYPE_CHECKING
from runtime.container.proc.userns import host_id
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple  # noqa: F401

DEFAULT_USER = "berth"
DEFAULT_START = 100000
DEFAULT_COUNT = 65536
_NAME = re.compile(r"^[a-zA-Z0-9_.][a-zA-Z0-9_.-]*\$?$")


class RemapError(Exception):
    """userns-remap cannot be applied; the message says what is missing and what to do."""


def check_value(value):
    # type: (str) -> None
    """The syntax of a userns-remap value (RemapError): default, USER[:GROUP] or UID[:GID]."""
    user, _, group = value.partition(":")
    for part in (user, group) if group else (user,):
        if not _NAME.match(part):
            raise RemapError("userns-remap %r is not default, USER[:GROUP] or UID[:GID]" % value)


class IdFiles(object):
    """Where the user database and the subordinate id files are (root: "/" on a host)."""

    def __init__(self, root=None):
        # type: (Optional[str]) -> None
        self.root = root if root is not None else (os.environ.get("BERTH_ID_ROOT") or "/")

    def path(self, name):
        # type: (str) -> str
        return os.path.join(self.root, "etc", name)

    def entries(self, name):
        # type: (str) -> List[List[str]]
        """The colon-separated lines of etc/<name> (none when it is missing)."""
        try:
            with open(self.path(name)) as f:
                return [line.strip().split(":") for line in f if line.strip() and not line.startswith("#")]
        except FileNotFoundError:
            return []


def _lookup(files, table, key, idx):
    # type: (IdFiles, str, str, int) -> Optional[Tuple[str, int, int]]
    """(name, id, primary gid) of a passwd/group entry by name or number."""
    for e in files.entries(table):
        if len(e) > idx and (e[0] == key or (key.isdigit() and e[2] == key)):
            return e[0], int(e[2]), int(e[3]) if table == "passwd" else int(e[2])
    return None


def ranges(files, table, name, num):
    # type: (IdFiles, str, str, int) -> List[Tuple[int, int]]
    """The (start, count) ranges of etc/subuid or subgid for a user, by name or number, sorted."""
    out = []
    for e in files.entries(table):
        if len(e) >= 3 and e[0] in (name, str(num)) and e[1].isdigit() and e[2].isdigit():
            out.append((int(e[1]), int(e[2])))
    return sorted(out)


def free_start(files):
    # type: (IdFiles) -> int
    """The first start from 100000 up where 65,536 ids are free in both subuid and subgid."""
    used = []
    for table in ("subuid", "subgid"):
        used += [(int(e[1]), int(e[2])) for e in files.entries(table)
                 if len(e) >= 3 and e[1].isdigit() and e[2].isdigit()]
    start = DEFAULT_START
    for s, n in sorted(used):
        if s < start + DEFAULT_COUNT and start < s + n:
            start = s + n
    return start


def _append(path, line):
    # type: (str, str) -> None
    with open(path, "a") as f:
        f.write(line + "\n")


def create_default(files):
    # type: (IdFiles) -> None
    """The `berth` system user and group (useradd), and its subordinate ranges when it has none."""
    if _lookup(files, "passwd", DEFAULT_USER, 3) is None:
        argv = ["useradd", "--system", "--no-create-home", "--shell", "/bin/false", "--user-group"]
        if files.root != "/":
            argv += ["--prefix", files.root]
        try:
            proc = subprocess.run(argv + [DEFAULT_USER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as e:
            raise RemapError("userns-remap default: cannot run useradd to create the %s user: %s "
                             "(create it, or run `provision host --userns-remap`)"
                             % (DEFAULT_USER, e.strerror)) from None
        if proc.returncode != 0:
            raise RemapError("userns-remap default: useradd %s failed: %s" % (
                DEFAULT_USER, proc.stdout.decode("utf-8", "replace").strip()))
    user = _lookup(files, "passwd", DEFAULT_USER, 3)
    if user is None:
        raise RemapError("userns-remap default: useradd did not make the %s user" % DEFAULT_USER)
    start = None
    for table in ("subuid", "subgid"):
        if not ranges(files, table, user[0], user[1]):
            start = free_start(files) if start is None else start
            _append(files.path(table), "%s:%d:%d" % (DEFAULT_USER, start, DEFAULT_COUNT))


def id_map(spans):
    # type: (List[Tuple[int, int]]) -> List[List[int]]
    """Subordinate ranges -> [[container id, host id, count]], container ids from 0 in order."""
    out, inside = [], 0
    for start, count in spans:
        out.append([inside, start, count])
        inside += count
    return out


class Remap(object):
    """One remapping: the user it comes from, its maps, and the host ids of the remapped root."""

    def __init__(self, user, uid_map, gid_map):
        # type: (str, List[List[int]], List[List[int]]) -> None
        self.user = user
        self.uid_map = uid_map
        self.gid_map = gid_map
        self.uid = host_id(uid_map, 0)
        self.gid = host_id(gid_map, 0)

    @property
    def dir_name(self):
        # type: () -> str
        """`<uid>.<gid>`: the remap's directory under the data root (dockerd's name)."""
        return "%d.%d" % (self.uid, self.gid)

    def shift(self, uid, gid):
        # type: (int, int) -> Tuple[int, int]
        """The host owner of a file a container sees as uid:gid (unmapped ids stay)."""
        u, g = host_id(self.uid_map, uid), host_id(self.gid_map, gid)
        return (u if u >= 0 else uid), (g if g >= 0 else gid)

    def spec(self):
        # type: () -> Dict[str, object]
        """What a container's record keeps (and its run spec gets)."""
        return {"UidMap": self.uid_map, "GidMap": self.gid_map}


def resolve(value, files=None):
    # type: (str, Optional[IdFiles]) -> Optional[Remap]
    """The Remap for a userns-remap value ("" -> None); RemapError says what is missing."""
    if not value:
        return None
    check_value(value)
    files = files or IdFiles()
    name, _, group = value.partition(":")
    if value == "default":
        create_default(files)
        name = DEFAULT_USER
    user = _lookup(files, "passwd", name, 3)
    if user is None:
        raise RemapError("userns-remap %r: no user %s in %s (create it, or use \"default\")"
                         % (value, name, files.path("passwd")))
    grp = (user[0], user[2], user[2])
    if group:
        found = _lookup(files, "group", group, 2)
        if found is None:
            raise RemapError("userns-remap %r: no group %s in %s" % (value, group, files.path("group")))
        grp = found
    uids = ranges(files, "subuid", user[0], user[1])
    gids = ranges(files, "subgid", grp[0], grp[1])
    for table, got, who in (("subuid", uids, user[0]), ("subgid", gids, grp[0])):
        if not got:
            raise RemapError("userns-remap %r: %s has no range in %s (add a line like %s:%d:%d)"
                             % (value, who, files.path(table), who, DEFAULT_START, DEFAULT_COUNT))
    check_kernel()
    return Remap(user[0], id_map(uids), id_map(gids))


def check_kernel(limit="/proc/sys/user/max_user_namespaces"):
    # type: (str) -> None
    """RemapError when this kernel has no user namespaces or allows none (CentOS 7's default)."""
    if not os.path.exists("/proc/self/ns/user"):
        raise RemapError("userns-remap: this kernel has no user namespaces (CONFIG_USER_NS): remove the key")
    try:
        with open(limit) as f:
            allowed = f.read().strip()
    except OSError:
        return
    if allowed == "0":
        raise RemapError("userns-remap: user.max_user_namespaces is 0, so no container can have a user "
                         "namespace: set it (15000 in /etc/sysctl.d/, as provision host --userns-remap does)")


def shift_tree(path, remap):
    # type: (str, Remap) -> None
    """Give every file under path (path included) the owner its remapped root sees it with;
    modes are set again after the chown (which clears set-user-ID and set-group-ID bits)."""
    def one(p):
        st = os.lstat(p)
        os.lchown(p, *remap.shift(st.st_uid, st.st_gid))
        if not os.path.islink(p):
            os.chmod(p, st.st_mode & 0o7777)
    one(path)
    for top, dirs, files in os.walk(path):
        for n in dirs + files:
            one(os.path.join(top, n))


_copy_lock = threading.Lock()


def layer_copies(data_root, remap, layer_dirs):
    # type: (str, Remap, List[str]) -> List[str]
    """The remap's copy of each layer dir (lowest first), made when missing: a copy
    (cp -a) with shifted owners, built aside and renamed into place, so it is whole or absent."""
    base = os.path.join(data_root, remap.dir_name, "layers")
    os.makedirs(base, mode=0o700, exist_ok=True)
    out = []
    with _copy_lock:
        for layer in layer_dirs:
            dest = os.path.join(base, os.path.basename(os.path.dirname(layer)) + "-"
                                + os.path.basename(layer))
            if not os.path.isdir(dest):
                tmp = tempfile.mkdtemp(prefix=".tmp-", dir=base)
                try:
                    proc = subprocess.run(["cp", "-a", "--reflink=auto", layer + "/.", tmp + "/"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    if proc.returncode != 0:
                        raise OSError("cannot copy layer %s for the remapped root %s: %s" % (
                            layer, remap.dir_name, proc.stderr.decode("utf-8", "replace").strip()))
                    shift_tree(tmp, remap)
                    os.rename(tmp, dest)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            out.append(dest)
    return out


def drop_copies(data_root, layer_dir):
    # type: (str, str) -> None
    """Remove every remap's copy of a layer that is being deleted."""
    name = os.path.basename(os.path.dirname(layer_dir)) + "-" + os.path.basename(layer_dir)
    try:
        remaps = os.listdir(data_root)
    except OSError:
        return
    for d in remaps:
        if re.match(r"^\d+\.\d+$", d):
            shutil.rmtree(os.path.join(data_root, d, "layers", name), ignore_errors=True)


def probe_idmap(data_root):
    # type: (str) -> str
    """Whether overlay takes idmapped layers on the data root's filesystem here: "" if so,
    else why not. Runs runtime/container/proc/userns.probe in a process of its own."""
    tmp = tempfile.mkdtemp(prefix="idmap-probe-", dir=data_root)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.path.insert(0, %r); from runtime.container.proc import userns; "
            "sys.stdout.write(userns.probe(%r))" % (root, tmp))
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, cwd="/")
        out = proc.stdout.decode("utf-8", "replace").strip()
        return out if proc.returncode == 0 else (out or "the probe failed").splitlines()[-1]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def for_container(remap, hc):
    # type: (Optional[Remap], dict) -> Optional[Remap]
    """The Remap a new container runs under (None: the host's ids), from the daemon's remap and
    HostConfig.UsernsMode (checked by runtime/container/security.py); what cannot go with a
    remapped root is refused as dockerd refuses it."""
    if remap is None or hc.get("UsernsMode") == "host":
        return None
    if hc.get("Privileged"):
        raise InvalidParameter("privileged mode is incompatible with user namespaces: run the "
                               "container in the host's user namespace (--userns=host) when it is privileged")
    for field, what in (("NetworkMode", "network"), ("PidMode", "PID")):
        if hc.get(field) == "host":
            raise InvalidParameter("cannot share the host's %s namespace when user namespaces are enabled "
                                   "(add --userns=host)" % what)
    return remap


def own_container_files(remap, paths):
    # type: (Remap, List[str]) -> None
    """chown the container's own files (its upper dir, /etc/hosts...) to the remapped root."""
    for p in paths:
        if os.path.lexists(p):
            os.lchown(p, remap.uid, remap.gid)
