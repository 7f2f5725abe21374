"""The child side of a container start (runc's containerInit/finalizeNamespace), run in a process
forked by the monitor inside the new PID namespace: join the cgroup, unshare the other
namespaces, build the root filesystem, set the hostname, drop to the user, capabilities and
no_new_privs, then exec (`finalize` before the monitor's "in the cgroup", `exec_` after it).
`finalize_and_exec` is shared with `exec` (runtime/container/proc/execproc.py).

Any failure is written to the sync pipe as one line before `_exit(126|127)`; a successful exec
closes the pipe (close-on-exec), which is how the monitor knows the process is running. PID 1
also writes EXEC_MARK there once only the execve is left (the command was looked up and is
executable, the filters are on): the monitor reports the start then, as runc's start returns
before its init's execve.
"""

import errno
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import termios

from runtime.container.proc import reaper, rootfs, seccomp, stdio, userns
from runtime.container.proc import syscalls as sc
from runtime.container.proc.wire import recv_fds, send_fd, send_fds

# Docker's default capability set
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
CAP_NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
    "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
    "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
    "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
    "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}


class StartError(Exception):
    """A start failure with the exit code Docker gives it (126 cannot run, 127 not found)."""

    def __init__(self, msg, code=127):
        # type: (str, int) -> None
        Exception.__init__(self, msg)
        self.code = code


def _entries(path):
    # type: (str) -> list
    """The colon-separated entries of /etc/passwd or /etc/group. Read as bytes: a text-mode
    open is ~0.25 ms more in a freshly forked PID 1, and a locale's codec (ASCII on CentOS 7's
    Python 3.6 under LANG=C) must not decide whether a name with other bytes can be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return []
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "surrogateescape")
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def resolve_user(spec):
    # type: (str) -> tuple
    """"name", "uid", "name:group", "uid:gid"... resolved through this root's /etc/passwd and
    /etc/group -> (uid, gid, [supplementary gids], home)."""
    user, _, group = (spec or "").partition(":")
    passwd = [e for e in _entries("/etc/passwd") if len(e) >= 7]
    uid, gid, home, name = 0, 0, "/", "root"
    if user:
        match = [e for e in passwd if e[0] == user or (user.isdigit() and e[2] == user)]
        if match:
            name, uid, gid, home = match[0][0], int(match[0][2]), int(match[0][3]), match[0][5]
        elif user.isdigit():
            name, uid, gid = None, int(user), 0
        else:
            raise StartError("unable to find user %s: no matching entries in passwd file" % user, 126)
    else:
        match = [e for e in passwd if e[2] == "0"]
        if match:
            home = match[0][5]
    groups = [e for e in _entries("/etc/group") if len(e) >= 3]
    if group:
        gmatch = [e for e in groups if e[0] == group or (group.isdigit() and e[2] == group)]
        if gmatch:
            gid = int(gmatch[0][2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise StartError("unable to find group %s: no matching entries in group file" % group, 126)
    extra = []  # type: list
    if name and not group:
        extra = [int(e[2]) for e in groups if len(e) >= 4 and name in e[3].split(",")]
    return uid, gid, sorted(set(extra + [gid])), home or "/"


def resolve_groups(names):
    # type: (list) -> list
    """HostConfig.GroupAdd entries (names or gids) through this root's /etc/group."""
    table = {e[0]: int(e[2]) for e in _entries("/etc/group") if len(e) >= 3 and e[2].isdigit()}
    out = []
    for g in names:
        g = str(g)
        if g.isdigit():
            out.append(int(g))
        elif g in table:
            out.append(table[g])
        else:
            raise StartError("Unable to find group %s: no matching entries in group file" % g, 126)
    return out


def drop_privileges(proc):
    # type: (dict) -> list
    """User, groups, capabilities and no_new_privs; returns the env with HOME added if unset.
    Without no_new_privs the seccomp filter goes in first (the kernel then wants CAP_SYS_ADMIN,
    which is about to go); with it, exec_ installs the filter at the last moment."""
    if proc.get("seccomp") and not proc.get("no_new_privs"):
        install_seccomp(proc["seccomp"])
    uid, gid, groups, home = resolve_user(proc.get("user", ""))
    groups = sorted(set(groups) | set(resolve_groups(proc.get("group_add") or [])))
    caps = 0
    for n in proc.get("caps", []):
        caps |= 1 << n
    last = sc.cap_last_cap()
    for n in range(last + 1):
        if not caps & (1 << n):
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, n)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)  # a non-root uid loses every capability here (no KEEPCAPS)
    if uid == 0:
        try:
            sc.capset(caps, caps, caps)
        except PermissionError:
            # asked for one the host's bounding set lacks (--privileged on a host whose root
            # lacks e.g. CAP_SYS_RESOURCE): keep those there are
            held = sum(1 << n for n in range(last + 1) if _in_bounding_set(n))
            sc.capset(caps & held, caps & held, caps & held)
    if proc.get("no_new_privs"):
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    env = list(proc["env"])
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + home)
    return env


def _in_bounding_set(n):
    # type: (int) -> bool
    try:
        return sc.prctl(PR_CAPBSET_READ, n) == 1
    except OSError:
        return False


PR_CAPBSET_READ = 23


def look_path(name, env):
    # type: (str, list) -> str
    """The executable `name` resolves to through the container's PATH (Go's exec.LookPath, as
    runc does it): a name with a slash is taken as it is, if it is there and executable.
    StartError(127) when there is none, StartError(126) when it cannot be run."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                raise StartError('exec: "%s": executable file not found in $PATH' % name, 127) from None
            raise StartError('exec: "%s": %s' % (name, e.strerror.lower()), 126) from None
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            raise StartError('exec: "%s": permission denied' % name, 126)
        return name
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            path = e[5:]
    for d in path.split(":"):
        full = os.path.join(d or ".", name)
        try:
            st = os.stat(full)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return full
    raise StartError('exec: "%s": executable file not found in $PATH' % name, 127)


def finalize(proc):
    # type: (dict) -> tuple
    """Everything before the exec itself: workdir, privileges, signal dispositions and the
    executable's path; returns (path, env dict) for exec(). Raises StartError."""
    cwd = proc.get("cwd") or "/"
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755)
    env = drop_privileges(proc)
    try:
        os.chdir(cwd)
    except OSError as e:
        raise StartError("chdir to cwd (%r) set in config.json failed: %s" % (cwd, e.strerror), 126) from None
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD,
                signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        if signal.getsignal(sig) != signal.SIG_DFL:  # (Python knows them all: no syscall)
            signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    return look_path(proc["args"][0], env), _env_dict(env)


def exec_(proc, path, env, ready_fd=-1):
    # type: (dict, str, dict, int) -> None
    """execve (after the seccomp filter when no_new_privs is set); raises StartError on failure.
    ready_fd: the sync pipe, told (EXEC_MARK) once only the execve is left; the start is then
    reported and the monitor stops reading, so a failing execve (a bad ELF, a missing
    interpreter) is written to stderr instead, where the container's output goes, as runc's init
    does, and the process exits with the error's code."""
    args = proc["args"]
    if proc.get("apparmor"):
        set_exec_profile(proc["apparmor"])
    if proc.get("selinux"):
        set_exec_label(proc["selinux"])
    if proc.get("seccomp") and proc.get("no_new_privs"):
        install_seccomp(proc["seccomp"])
    if ready_fd >= 0:
        try:
            os.write(ready_fd, stdio.EXEC_MARK)
        except OSError:  # (a profile denying write): the monitor waits for the exec instead
            ready_fd = -1
    try:
        os.execve(path, args, env)
    except FileNotFoundError:
        err = StartError('exec: "%s": executable file not found in $PATH' % args[0], 127)
    except PermissionError:
        err = StartError('exec: "%s": permission denied' % args[0], 126)
    except OSError as e:
        err = StartError('exec: "%s": %s' % (args[0], e.strerror), 126)
    if ready_fd >= 0:  # the monitor no longer reads the pipe
        try:
            os.write(2, ("%s\n" % err).encode("utf-8", "replace"))
        except OSError:
            pass
        os._exit(err.code)
    raise err


def set_exec_profile(name):
    # type: (str) -> None
    """Ask AppArmor to confine the next execve by profile `name` (what runc writes)."""
    _write_exec_attr(("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"), "exec " + name,
                     "apparmor", "profile " + name)


def set_exec_label(label):
    # type: (str) -> None
    """Ask SELinux to run the next execve with `label` (runc's setexeccon); thread-self: 3.17+."""
    _write_exec_attr(("/proc/thread-self/attr/exec", "/proc/self/attr/exec"), label, "selinux",
                     "label " + label)


def _write_exec_attr(paths, data, lsm, what):
    # type: (tuple, str, str, str) -> None
    """Write data to the first of the LSM attr files paths this kernel has; StartError else."""
    for path in paths:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise StartError("%s: cannot open %s: %s" % (lsm, path, e.strerror), 126) from None
        try:
            os.write(fd, data.encode())
            return
        except OSError as e:
            raise StartError("%s: cannot apply %s: %s" % (lsm, what, e.strerror), 126) from None
        finally:
            os.close(fd)
    raise StartError("%s: %s asked for, but this kernel has no %s attr files" % (lsm, what, lsm), 126)


def install_seccomp(program):
    # type: (str) -> None
    """The run spec's compiled filter on this process; StartError if the kernel refuses it."""
    try:
        seccomp.install_b64(program)
    except OSError as e:
        raise StartError("seccomp: cannot install the filter: %s" % (e.strerror or e), 126) from None


def finalize_and_exec(proc):
    # type: (dict) -> None
    """finalize, then exec (the exec helper's way: nothing to wait for in between)."""
    path, env = finalize(proc)
    exec_(proc, path, env)


def _env_dict(env):
    # type: (list) -> dict
    out = {}
    for e in env:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def set_stdio(fds):
    # type: (list) -> None
    """dup the three fds onto 0, 1, 2 (inheritable) and make the tty, if any, controlling."""
    for i, fd in enumerate(fds):
        if fd != i:
            os.dup2(fd, i)


def loopback_up():
    # type: () -> None
    """Set IFF_UP on lo in the new network namespace (it starts down)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP
    finally:
        s.close()


def join_cgroup(paths):
    # type: (list) -> None
    """Write "0" (= the caller) into each of the files (CgroupManager.join_files: v1's tasks
    files, v2's cgroup.procs)."""
    for path in paths:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def open_console(pty_sock, size=None, owner=None):
    # type: (object, object, tuple) -> list
    """A pty of the container's own devpts (after pivot_root), its slave bound on /dev/console,
    the master handed to the monitor; returns the slave as stdio. size: ConsoleSize [h, w],
    set here so the command sees it from its first instruction (the monitor's resize of the
    master would race with it)."""
    master, slave = os.openpty()
    if owner:  # a remapped root's terminal
        os.fchown(slave, owner[0], owner[2])
    if size:
        stdio.resize(slave, size[0], size[1])
    rootfs.touch("/dev/console")
    sc.mount(os.ttyname(slave), "/dev/console", None, sc.MS_BIND)
    send_fd(pty_sock, master)
    os.close(master)
    pty_sock.close()
    return [slave, slave, slave]


NO_CGROUP = "the monitor could not put the container into its cgroup"
NS_FLAGS = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET


def container_main(spec, stdio, sync_w, go_r, tty, pty_sock=None, ready=False, staged=None):
    # type: (dict, list, int, int, bool, object, bool, str) -> None
    """PID 1 of the container, up to exec. Never returns. Its cgroup: a spare's, renamed by
    the monitor; or entered first thing (spec's cgroup_join: cgroup v1, where entering by
    oneself skips the kernel's threadgroup lock, CgroupV1.join_files); or the monitor moves
    this process in meanwhile (a move waits for an RCU grace period, ~10 ms, so it runs in
    parallel with the filesystem setup). The monitor says on go_r that the cgroup is done,
    which exec waits for. ready: the namespaces are already made (prepared_main); staged:
    where rootfs.stage() left the parts of the root that do not depend on the container."""
    code = 127
    try:
        if spec.get("cgroup_join"):  # (cgroup v1: the monitor made it; entering is cheap, moving is not)
            try:
                join_cgroup(spec["cgroup_join"])
            except OSError as e:
                raise StartError("cannot put the container into its cgroup: %s" % e, 126) from None
        remap = spec.get("userns")
        maker = userns.Maker() if remap else None  # its helper starts while we go on
        if not ready:
            sc.unshare(spec["ns_flags"])
            if spec["ns_flags"] & sc.CLONE_NEWNET:
                loopback_up()
            elif spec.get("join_netns"):
                sc.setns(spec["netns_fd"], sc.CLONE_NEWNET)
                os.close(spec["netns_fd"])
        join_namespaces(spec.get("ns_join") or {})
        set_sysctls(spec.get("sysctls") or {})
        userns_fd = maker.fd(remap["uid_map"], remap["gid_map"]) if maker else -1
        rootfs.build(spec, staged, userns_fd)
        if maker:
            maker.reap()
        if spec.get("own_uts", True):
            sc.sethostname(spec["hostname"])
            if spec.get("domainname"):
                sc.setdomainname(spec["domainname"])
        if pty_sock is not None:
            stdio = open_console(pty_sock, spec.get("console_size"), rootfs.remap_owner(spec))
        if tty:
            os.setsid()
        set_stdio(stdio)
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        set_process_limits(spec)
        if spec.get("cgroupns"):  # its own cgroup namespace, rooted at the cgroup it is moved into
            _await_cgroup(go_r)
            sc.unshare(sc.CLONE_NEWCGROUP)
            _enter_userns(userns_fd)
            path, env = finalize(spec["process"])
        else:  # all but the exec now, while the monitor may still be moving us into the cgroup
            _enter_userns(userns_fd)
            path, env = finalize(spec["process"])
            _await_cgroup(go_r)
        # PID 1 dies with its monitor (after finalize: a change of uid clears the setting): a
        # container whose monitor is gone has no one to record its exit or relay its output,
        # and is killed as containerd kills one whose shim died
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if spec.get("init") and _fork_init(sync_w):
            reaper.foreground(tty)
        exec_(spec["process"], path, env, sync_w)
    except StartError as e:
        code = e.code
        _report(sync_w, str(e))
    except BaseException as e:  # noqa: B036 - the child must never return into the forkserver
        _report(sync_w, "container init: %s" % (e,))
    os._exit(code)


def _enter_userns(fd):
    # type: (int) -> None
    """A remapped root's user namespace, joined last (runtime/container/proc/userns.py)."""
    if fd >= 0:
        try:
            userns.enter(fd)
        except OSError as e:
            raise StartError("cannot enter the container's user namespace: %s" % e, 126) from None


def _await_cgroup(go_r):
    # type: (int) -> None
    if os.read(go_r, 1) != b"1":
        raise StartError(NO_CGROUP, 126)
    os.close(go_r)


def _fork_init(sync_w):
    # type: (int) -> bool
    """HostConfig.Init: fork the command; this process stays PID 1 as the reaping init
    (proc/reaper.py). True in the child, which goes on to exec the command."""
    sc.set_name(reaper.NAME)  # before the fork: the command may read /proc/1/comm at once
    child = os.fork()
    if child == 0:
        return True
    os.close(sync_w)  # the command's exec (close-on-exec) tells the monitor it runs
    reaper.run(child)
    return False  # not reached


def join_namespaces(paths):
    # type: (dict) -> None
    """setns into another container's (or the host's) IPC and UTS namespaces: {"ipc": path}."""
    for kind, flag in (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS)):
        if paths.get(kind):
            fd = os.open(paths[kind], os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, flag)
            finally:
                os.close(fd)


def set_sysctls(values):
    # type: (dict) -> None
    """HostConfig.Sysctls, written while /proc/sys is still the host's writable one: the
    namespaced ones apply to this process's own IPC, network and UTS namespaces."""
    for key in sorted(values):
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, values[key].encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise StartError("cannot set sysctl %s=%s: %s" % (key, values[key], e.strerror), 126) from None


def set_process_limits(spec):
    # type: (dict) -> None
    """HostConfig.Ulimits and OomScoreAdj, inherited by the exec."""
    for name, res, soft, hard in spec.get("ulimits") or []:
        try:
            sc.setrlimit(res, soft, hard)
        except OSError as e:
            raise StartError("cannot set ulimit %s=%d:%d: %s" % (name, soft, hard, os.strerror(e.errno)),
                             126) from None
    adj = spec.get("oom_score_adj")
    if adj:
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(adj))
        except OSError as e:
            raise StartError("cannot set oom_score_adj %d: %s" % (adj, e.strerror), 126) from None


FIRST = b"ns"  # prepared_main's first message, and with the spare's cgroup entered:
FIRST_IN_CGROUP = b"ns+cgroup"


def prepared_main(chan, host_net, sync_w, go_r, stage_dir=None, cgroup=None):
    # type: (socket.socket, int, int, int, str, object) -> None
    """PID 1 forked ahead of its request (runtime/container/proc/monitor.py prepare): enter the
    spare's cgroup, if there is one (cgroup v1: join_cgroup; the first message says whether it
    did), make the mount, UTS, IPC and network namespaces (lo up) and stage /proc, /sys and /dev
    on stage_dir (the engine's root mount point) now, then wait on chan for the spec and the
    stdio fds [stdin, stdout, stderr] (or [pty socket] with a TTY), plus the network namespace
    to join when the spec says join_netns, and go on as container_main. A host-network container
    goes back into the host's network namespace (host_net). EOF on chan (the spare was never
    used) ends it quietly."""
    failed = None
    staged = None
    first = FIRST
    if cgroup is not None:
        try:
            join_cgroup(cgroup.join_files())
            first = FIRST_IN_CGROUP
        except OSError:
            pass  # the start moves PID 1 instead of renaming the spare's cgroup
    try:
        sc.unshare(NS_FLAGS)
        loopback_up()
    except BaseException as e:  # noqa: B036 - reported once there is a request to report to
        failed = e
    # first message, always (the monitor reads it before it sends the spec and closes: a unix
    # socket closed with unread data makes the peer's next read fail with ECONNRESET): our
    # mount namespace, which the monitor holds past our exit (see Monitor.run)
    ns = -1
    if failed is None:
        try:
            ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass
    try:
        send_fds(chan, first, [ns] if ns >= 0 else [])
    except OSError:
        os._exit(0)  # the spare is gone
    if ns >= 0:
        os.close(ns)
    if failed is None and stage_dir:
        try:
            rootfs.stage(stage_dir)
            staged = stage_dir
        except (OSError, ValueError):
            pass  # the start builds it all
    try:
        msg, fds = recv_fds(chan, 1 << 20, 4)
    except BaseException:  # noqa: B036
        os._exit(0)
    if not msg:
        os._exit(0)
    chan.close()
    try:
        spec = json.loads(msg.decode())
        if failed is not None:
            raise failed
        if spec.get("join_netns"):  # made and wired by the engine (bridge, container:)
            netns = fds.pop()
            sc.setns(netns, sc.CLONE_NEWNET)
            os.close(netns)
        elif not spec["ns_flags"] & sc.CLONE_NEWNET:
            sc.setns(host_net, sc.CLONE_NEWNET)
        os.close(host_net)
        if staged and staged != spec["rootfs"]:  # another engine's spare? build it all
            sc.umount2(staged, sc.MNT_DETACH)
            staged = None
    except BaseException as e:  # noqa: B036 - the child must never return into the forkserver
        _report(sync_w, "container init: %s" % (e,))
        os._exit(127)
    tty = bool(spec["tty"])
    if tty:
        container_main(spec, [], sync_w, go_r, True, socket.socket(fileno=fds[0]), ready=True,
                       staged=staged)
    container_main(spec, fds, sync_w, go_r, False, ready=True, staged=staged)


def _report(fd, msg):
    # type: (int, str) -> None
    try:
        os.write(fd, msg.encode("utf-8", "replace")[:4000])
    except OSError:
        pass
