"""The listening unix socket: owned root:<group>, mode 0660, never looser even for an instant.

It is bound inside a fresh 0700 directory next to its final path (with umask 0o117 so the
inode is born 0660), chowned and chmodded there, then renamed into place: no other user can
reach it before it has its final owner and mode.
"""

import errno
import grp
import logging
import os
import socket
import tempfile

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Tuple  # noqa: F401

log = logging.getLogger("berthd")


class SocketError(Exception):
    """The socket cannot be created (in use, bad path, unknown group)."""


def resolve_group(group, default_name="docker"):
    # type: (str, str) -> int
    """The gid for a group name or number. The default group missing falls back to root's
    group with a warning (as dockerd does); any other unknown group is an error."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group == default_name:
            log.warning("group %r not found: the socket will be root:root 0660 "
                        "(create the group to let its members use it)", group)
            return 0
        raise SocketError("group %r not found: create it or pass an existing --group" % group) from None


def _clear_stale(path):
    # type: (str) -> None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    import stat
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketError("%s exists and is not a socket: remove it or choose another -H" % path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise SocketError("cannot check %s: %s" % (path, exc)) from None
        os.unlink(path)  # stale: nobody is listening
        return
    finally:
        probe.close()
    raise SocketError("%s is in use by another daemon: stop it or choose another -H" % path)


def listen_unix(path, gid, backlog=4096):
    # type: (str, int, int) -> Tuple[socket.socket, int]
    """A listening socket at path, root:gid 0660 from its first moment, and the path's inode.
    backlog: how many connections wait to be accepted (the kernel cuts it to somaxconn); one
    more gets EAGAIN at once on connect."""
    parent = os.path.dirname(os.path.abspath(path)) or "/"
    os.makedirs(parent, mode=0o755, exist_ok=True)
    _clear_stale(path)
    private = tempfile.mkdtemp(prefix=".b", dir=parent)  # mode 0700
    tmp = os.path.join(private, "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o117)
        try:
            sock.bind(tmp)
        finally:
            os.umask(old)
        os.chown(tmp, 0, gid)
        os.chmod(tmp, 0o660)
        sock.listen(backlog)
        ino = os.lstat(tmp).st_ino
        os.rename(tmp, path)
    except OSError as exc:
        sock.close()
        raise SocketError("cannot listen on %s: %s" % (path, exc)) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.rmdir(private)
    return sock, ino


def remove_socket(path, ino, sock):
    # type: (str, int, socket.socket) -> None
    """Close the socket and unlink path if it is still the inode listen_unix made (not one a
    newer daemon put there)."""
    sock.close()
    try:
        if os.lstat(path).st_ino == ino:
            os.unlink(path)
    except OSError:
        pass
