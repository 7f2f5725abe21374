"""The per-container monitor (like conmon or containerd-shim): a process forked by the forkserver
that starts the container's PID 1, holds its stdio, writes the json-file log, serves attach and
wait over `attach.sock` in the state dir, and records the exit in `exit.json` (temp + rename)
before it exits. It runs in its own session and as a child subreaper, so it outlives the engine.

Socket protocol: the client sends one message (runtime.container.proc.wire.send_msg):
{"op": "attach", "stdin": b, "stdout": b, "stderr": b, "close_stdin": b} then reads output
(frames, or raw with a TTY) and writes stdin (its end closes the container's if close_stdin);
{"op": "wait"} just waits for EOF; {"op": "resize", "h": n, "w": n}; {"op": "flush"} copies what
is in PID 1's pipes to the log, then closes (`logs` reads everything written before it);
{"op": "stop"} is a wait sent before a stop's signal (no restart follows that exit);
{"op": "policy", "policy": {...}, "extra": [...]} replaces the restart policy and the optional
cgroup controllers the container is in (`update`);
{"op": "probe", "process", "cgroup_procs", "timeout"} runs a health check (probe.py) and
answers {"code", "output", "timeout"}.

Restart policies are carried out here, not in the engine (runtime/container/proc/restart.py has the
rules): the monitor is the one process that sees the exit at once and that outlives the engine,
so `always` keeps a service up while no engine runs. At each exit it records exit.json
(`Restarting` true while a restart is due), ends the waiters, sleeps the back-off delay (still
serving its socket: a stop cancels the restart), forks a new PID 1 into a new PID namespace in
the same cgroup and records the new state.json (RestartCount) itself.
Clients that attached before the start arrive with the run request instead (their sockets,
`spec["attach"]` their requests): they are served from PID 1's first byte, as Docker's
attach-then-start is.
"""

import errno
import gc
import json
import os
import select
import signal
import socket
import struct
import time

from runtime import TYPE_CHECKING
from runtime.container.proc import cgroups, devices, init, logfile, nursery, probe, restart, stdio
from runtime.container.proc import syscalls as sc
from runtime.atomicfile import read_json, write_json
from runtime.container.proc.wire import recv_fds, recv_msg, send_fds, send_msg
from runtime.framing import frame
from runtime.timefmt import ZERO_TIME, rfc3339

if TYPE_CHECKING:
    from typing import List, Optional  # noqa: F401


class _Client(object):
    def __init__(self, sock, req):
        # type: (socket.socket, dict) -> None
        self.sock = sock
        self.streams = set()
        if req.get("stdout", True):
            self.streams.add(stdio.STDOUT)
        if req.get("stderr", True):
            self.streams.add(stdio.STDERR)
        self.stdin = bool(req.get("stdin"))
        self.close_stdin = bool(req.get("close_stdin", True))  # its EOF closes the container's
        self.reading = True


def enter_pid_namespace(join):
    # type: (str) -> None
    """Where PID 1 will be forked: a new PID namespace (None), the host's ("host": ours), or
    another container's (the path of its /proc/<pid>/ns/pid)."""
    if join is None:
        sc.unshare(sc.CLONE_NEWPID)
    elif join != "host":
        fd = os.open(join, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWPID)
        finally:
            os.close(fd)


class Monitor(object):
    """One container's monitor; `run()` never returns."""

    def __init__(self, head, body, reply, attach_fds=(), prepared=None):
        # type: (dict, bytes, socket.socket, tuple, Prepared) -> None
        """head: the request's header (spawner.request: tty, open_stdin, join_netns); body: the
        run spec's JSON, which a prepared PID 1 gets as it is, before the monitor reads it."""
        self.head = head
        self.body = body
        self.spec = {}  # type: dict  # (read from body in run())
        self.reply = reply
        self.prepared = prepared
        self.attach_fds = list(attach_fds)
        # the engine's network namespace for PID 1 (bridge, container:) comes after the attaches
        self.netns = self.attach_fds.pop() if head.get("join_netns") else -1
        self.state_dir = ""
        self.clients = []  # type: list
        self.io = None  # type: stdio.Stdio
        self.stop_requested = False  # a stop through the API: no restart after this exit
        self.pid1 = 0  # the running PID 1 (probes join its namespaces)
        self.start_time = 0  # this process's (field 22 of /proc/self/stat): state.json's MonitorStart
        self.probes = {}  # type: dict  # pid -> probe.Probe
        self.backoff = None  # type: restart.Backoff
        self.cg = None  # type: cgroups.CgroupManager
        self.log = None  # type: logfile.JsonLog

    def run(self):
        # type: () -> None
        p = self.prepared
        wake_r = p.wake_r if p is not None else _wake_on_sigchld()
        head = self.head
        # with a TTY, PID 1 opens the pty in its own devpts and sends the master back
        self.io = io = stdio.Stdio(head["tty"], head["open_stdin"])
        pty_sock, pty_child = socket.socketpair() if head["tty"] else (None, None)
        mnt_ns, joined = -1, False
        cgroup_error = ""
        if p is not None:  # PID 1 is waiting, its namespaces made: hand it the spec and stdio
            mnt_ns, joined = _recv_first(p.chan)
            fds = [pty_child.fileno()] if pty_child is not None else list(io.child)
            if self.netns >= 0:
                fds.append(self.netns)
            try:
                # the spec's bytes as they came: PID 1 builds the root while we read them
                send_fds(p.chan, self.body, fds)
            except OSError:  # it is gone (killed?); its PID namespace went with it
                _, status = os.waitpid(p.pid, 0)
                nursery.release(p.cgroup)
                send_msg(self.reply, {"error": "the container's init process, forked ahead of the "
                                      "start, died before it (wait status %d): start it again" % status,
                                      "code": 126})
                os._exit(0)
            p.chan.close()
            pid, sync_r, go_w = p.pid, p.sync_r, p.go_w
            spec = self._read_spec()
        else:
            spec = self._read_spec()
            sync_r, sync_w = os.pipe()
            go_r, go_w = os.pipe()
            self.cg = self._cgroup(spec)
            join = []  # type: List[str]
            if self.cg.self_join():  # cgroup v1: made now, and PID 1 enters it first thing
                cgroup_error = self._make_cgroup(spec)
                join = [] if cgroup_error else self.cg.join_files()
            enter_pid_namespace(spec.get("pid_ns"))
            pid = os.fork()
            if pid == 0:
                os.close(sync_r)
                os.close(go_w)
                spec["netns_fd"] = self.netns
                spec["cgroup_join"] = join
                init.container_main(spec, io.child, sync_w, go_r, spec["tty"], pty_child)
            os.close(sync_w)
            os.close(go_r)
            if not self.cg.self_join():  # (v2) made now, while PID 1 builds its root, then it is moved in
                cgroup_error = self._adopt_or_move(spec, pid, None, None)
        if self.netns >= 0 and (spec.get("restart_policy") or {}).get("Name", "no") == "no":
            os.close(self.netns)  # PID 1 holds it now; the monitor must not keep it alive
            self.netns = -1
        # (with a restart policy the monitor keeps it: a new PID 1 joins the same namespace)
        if p is not None:  # made now, while PID 1 builds its root: the spare's renamed, or a move
            self.cg = self._cgroup(spec)
            cgroup_error = self._adopt_or_move(spec, pid, p.cgroup if joined else None, p.cgroup)
        if not cgroup_error:
            try:
                os.write(go_w, b"1")
            except OSError:
                pass  # PID 1 failed already: it says why
        os.close(go_w)
        io.close_child_ends()
        # log file and socket now, while PID 1 is still busy with its filesystem
        log = self.log = logfile.writer(spec["log"])
        os.chdir(self.state_dir)  # bind by a relative name: the full path may exceed 108 bytes
        _reserve_space()
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink("attach.sock")
        except OSError:
            pass
        lsock.bind("attach.sock")
        lsock.listen(16)
        self.adopt_early_clients()
        # read before the exec: /proc/<pid>/stat of a process in execve is slow to read (~0.6 ms)
        pid_start, self.start_time = _start_time(pid), _start_time(os.getpid())
        err = stdio.await_exec(io, sync_r, pty_sock, pty_child, early=True)
        if cgroup_error and (not err or err == init.NO_CGROUP.encode()):
            err = cgroup_error.encode()  # (PID 1's own failure, e.g. not found, comes first)
        os.close(sync_r)  # (PID 1 writes nothing there after its exec mark)
        if err:
            os.unlink("attach.sock")
            _, status = os.waitpid(pid, 0)
            send_msg(self.reply, {"error": err.decode("utf-8", "replace"), "code": stdio.exit_code(status)})
            os._exit(0)
        send_msg(self.reply, {"pid": pid, "monitor": os.getpid(), "start_time": pid_start,
                              "monitor_start": self.start_time})
        self.reply.close()
        gc.enable()
        self.pid1 = pid
        try:
            self.serve(pid, wake_r, lsock, log, mnt_ns)
        except BaseException as e:  # noqa: B036 - a bug of ours: PID 1 must not run on unwatched
            self.failed(e)

    @staticmethod
    def _cgroup(spec):
        # type: (dict) -> cgroups.CgroupManager
        c = spec["cgroup"]
        return cgroups.manager(c["parent"], c["name"], c["version"], c.get("extra") or ())

    def _make_cgroup(self, spec):
        # type: (dict) -> str
        """The cgroup with its limits and device rules, for PID 1 to enter by itself
        (cgroups.CgroupV1.join_files); the error's text, or ""."""
        try:
            self.cg.create(spec["limits"])
            devices.apply(self.cg, _device_rules(spec))
        except (OSError, ValueError) as e:
            return self._cgroup_error(e)
        return ""

    def _cgroup_error(self, e):
        # type: (Exception) -> str
        return "cannot set up the container's cgroup %s: %s" % (self.cg.parent + "/" + self.cg.name, e)

    def _adopt_or_move(self, spec, pid, entered, spare):
        # type: (dict, int, Optional[cgroups.CgroupV1], Optional[cgroups.CgroupV1]) -> str
        """PID 1 into the container's cgroup: the spare's cgroup it entered (nursery.py)
        renamed, or the cgroup made and PID 1 moved in (and the spare's removed). The error's
        text, or ""."""
        cg = self.cg
        dev = _device_rules(spec)
        try:
            # PID 1 is in it already, under the default device rules
            adopted = entered is not None and nursery.fits(spec["cgroup"], dev.get("rules"), entered.parent) \
                and nursery.adopt(entered, cg)
            cg.create(spec["limits"])
            if not adopted:
                devices.apply(cg, dev)
                cg.move_in(pid)
                nursery.release(spare)
        except (OSError, ValueError) as e:
            return self._cgroup_error(e)
        return ""

    def _read_spec(self):
        # type: () -> dict
        """The run spec, from the request's body (once)."""
        self.spec = spec = json.loads(self.body.decode())
        self.body = b""
        self.state_dir = spec["state_dir"]
        self.io.size = spec.get("console_size")
        return spec

    def serve(self, pid, wake_r, lsock, log, mnt_ns):
        # type: (int, int, socket.socket, logfile.JsonLog, int) -> None
        """From the start on: serve clients, record each exit, restart by the policy, clean up."""
        spec = self.spec
        backoff = self.backoff = restart.Backoff(spec.get("restart_policy"), spec.get("restart_count", 0))
        started = time.time()
        while True:
            self.pid1 = pid
            status = self.loop(pid, wake_r, lsock, log)
            self.pid1 = 0
            for p in list(self.probes.values()):  # (their processes died with the PID namespace)
                p.abandon()
            self.probes = {}
            self.drain(log)
            code = stdio.exit_code(status)
            oom = False
            try:
                oom = self.cg.oom_killed(code)
            except (OSError, ValueError):
                pass
            delay = None
            if (backoff.policy or {}).get("Name", "no") != "no":  # (no stat on the `run --rm` path)
                delay = backoff.next(code, self.stop_requested or os.path.exists(restart.MANUAL_STOP),
                                     time.time() - started)
            record = {"ExitCode": code, "OOMKilled": oom, "FinishedAt": rfc3339(time.time()), "Pid": pid,
                      "StartedAt": spec.get("started_at"), "Restarting": delay is not None,
                      "RestartCount": backoff.count}
            _record("exit.json", record)
            if delay is None:
                break
            self.end_clients()  # waiters see EOF at every exit, as dockerd's do
            if mnt_ns >= 0:  # the old root must be unmounted before a new one uses upper/
                os.close(mnt_ns)
                mnt_ns = -1
            if not self.pause(delay, lsock, wake_r):
                record.update(Restarting=False)
                _record("exit.json", record)
                break
            spec["started_at"] = rfc3339(time.time())
            started = time.time()
            pid, err = self.respawn(self.cg)
            if err:
                record.update(Restarting=False, Error=err, ExitCode=127 if "not found" in err else 126)
                _record("exit.json", record)
                break
            _record("state.json", {"Pid": pid, "PidStart": _start_time(pid), "MonitorPid": os.getpid(),
                                   "MonitorStart": self.start_time,
                                   "StartedAt": spec["started_at"], "FinishedAt": ZERO_TIME,
                                   "RestartCount": backoff.count})
            os.unlink("exit.json")
            _reserve_space()  # (given back if the last exit needed it)
        log.close()  # (its last partial lines: a log read after the wait has them)
        # the state dir is settled before the waiters' EOF: what they see after it stays
        _give_back_space()
        try:
            os.unlink("attach.sock")
        except OSError:
            pass
        self.end_clients()
        lsock.close()  # and so do those still in its backlog (not at our exit, which is later)
        # the empty cgroup goes next: a removal that follows the exit (`run --rm`) then finds
        # it gone instead of making the rmdirs itself (~0.3 ms on cgroup v1) while its answer
        # waits
        try:
            self.cg.destroy()
        except OSError:
            pass
        if mnt_ns >= 0:
            # PID 1's mount namespace outlived it through this fd, so its exit did not wait for
            # the overlay's unmount, which syncs the whole upper filesystem (~2 ms on ext4
            # here): that happens now, after the waiters have the exit code
            os.close(mnt_ns)
        os._exit(0)

    def failed(self, exc):
        # type: (BaseException) -> None
        """The monitor hit an error of its own after the start: its traceback goes to
        monitor.err in the state dir, PID 1 is killed (it would run on with no one to record
        its exit, relay its output or stop it; PDEATHSIG would kill it as we exit anyway) and
        the exit is recorded with the reason, so that inspect says what happened."""
        import traceback
        try:
            with open(MONITOR_ERR, "w") as f:
                f.write(rfc3339(time.time()) + "\n")
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=f)
        except OSError:
            pass
        status = None
        if self.pid1:
            try:
                os.kill(self.pid1, signal.SIGKILL)
                _, status = os.waitpid(self.pid1, 0)
            except OSError:
                pass
        try:
            _record("exit.json", {
                "ExitCode": stdio.exit_code(status) if status is not None else 255, "OOMKilled": False,
                "FinishedAt": rfc3339(time.time()), "Pid": self.pid1,
                "StartedAt": self.spec.get("started_at"),
                "Restarting": False, "Error": "the container's monitor failed (%s: %s; traceback in %s): "
                "the container was stopped" % (type(exc).__name__, exc, MONITOR_ERR)})
        except OSError:
            pass
        self.end_clients()
        if self.cg is not None:
            try:
                self.cg.destroy()
            except OSError:
                pass
        os._exit(1)

    def end_clients(self):
        # type: () -> None
        """Every client sees EOF: waiters learn that the exit is on disk."""
        for c in self.clients:
            c.sock.close()
        self.clients = []

    def pause(self, delay, lsock, wake_r):
        # type: (float, socket.socket, int) -> bool
        """The restart delay, serving the socket meanwhile; False when a stop or kill through
        the API cancelled the restart. The first restart also waits (up to 5 s) for the
        engine's record of the first start, which a restart's record must come after."""
        deadline = time.time() + delay
        record_by = time.time() + 5
        while True:
            if self.stop_requested or os.path.exists(restart.MANUAL_STOP):
                return False
            left = deadline - time.time()
            if left <= 0:
                if read_json("state.json", {}).get("MonitorPid") == os.getpid() or time.time() > record_by:
                    return True
                left = 0.01
            try:
                ready, _, _ = select.select([lsock, wake_r], [], [], left)
            except InterruptedError:
                continue
            if wake_r in ready:
                os.read(wake_r, 512)
                _reap(-1)  # stray children (the old PID 1's are gone with its namespace)
            if lsock in ready:
                self.accept(lsock, recorded=True)

    def respawn(self, cg):
        # type: (cgroups.CgroupManager) -> tuple
        """Start PID 1 again, as a monitor without a prepared one does: a new PID namespace
        (ours for children is the dead one: back to our own first, then a new one), the same
        cgroup. Returns (pid, error text or "")."""
        spec = self.spec
        old = self.io
        for fd in set(list(old.readers) + [old.stdin_w, old.master]):
            if fd >= 0:
                os.close(fd)
        self.io = io = stdio.Stdio(spec["tty"], spec["open_stdin"], spec.get("console_size"))
        pty_sock, pty_child = socket.socketpair() if spec["tty"] else (None, None)
        sync_r, sync_w = os.pipe()
        go_r, go_w = os.pipe()
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(own, sc.CLONE_NEWPID)
        finally:
            os.close(own)
        sc.unshare(sc.CLONE_NEWPID)
        spec["netns_fd"] = self.netns  # the engine's network namespace (bridge, container:), kept
        pid = os.fork()
        if pid == 0:
            os.close(sync_r)
            os.close(go_w)
            spec["cgroup_join"] = cg.join_files() if cg.self_join() else []  # (v1: PID 1 enters)
            init.container_main(spec, io.child, sync_w, go_r, spec["tty"], pty_child)
        os.close(sync_w)
        os.close(go_r)
        cgroup_error = ""
        try:
            if not cg.self_join():
                cg.move_in(pid)
        except OSError as e:
            cgroup_error = "cannot put the container into its cgroup %s: %s" % (cg.parent + "/" + cg.name, e)
        else:
            try:
                os.write(go_w, b"1")
            except OSError:
                pass
        os.close(go_w)
        io.close_child_ends()
        # as at the first start: a failing execve is the run's output and exit
        err = stdio.await_exec(io, sync_r, pty_sock, pty_child, early=True).decode("utf-8", "replace")
        os.close(sync_r)
        err = err or cgroup_error
        if err:
            os.waitpid(pid, 0)
        return pid, err

    def adopt_early_clients(self):
        # type: () -> None
        """The clients that attached before the start (before PID 1 can have written)."""
        for fd, req in zip(self.attach_fds, self.spec.get("attach") or []):
            self.add_client(socket.socket(fileno=fd), req)
        self.attach_fds = []

    def add_client(self, conn, req):
        # type: (socket.socket, dict) -> None
        """Serve an attach (or a wait: no streams) on conn."""
        client = _Client(conn, req)
        if req.get("logs"):
            self.replay(client)
        if req.get("stream") is False:
            conn.close()
            return
        self.clients.append(client)

    def loop(self, pid, wake_r, lsock, log):
        # type: (int, int, socket.socket, logfile.JsonLog) -> int
        """Serve until PID 1 exits; returns its wait status."""
        io = self.io
        while True:
            rlist = list(io.readers) + [wake_r, lsock] + [c.sock for c in self.clients if c.reading]
            timeout = None
            by_fd = {}  # type: dict
            if self.probes:
                by_fd = {p.fd: p for p in self.probes.values() if p.fd >= 0}
                rlist += list(by_fd)
                timeout = max(0.0, min(p.deadline for p in self.probes.values()) - time.time())
            try:
                ready, _, _ = select.select(rlist, [], [], timeout)
            except InterruptedError:
                continue
            if by_fd or self.probes:
                self.tend_probes([r for r in ready if isinstance(r, int) and r in by_fd], by_fd)
            for r in ready:
                if r == wake_r:
                    os.read(wake_r, 512)
                    others = {}  # type: dict
                    status = _reap(pid, others)
                    self.probes_exited(others)
                    if status is not None:
                        return status
                elif isinstance(r, int) and r in by_fd:
                    continue
                elif r is lsock:
                    self.accept(lsock)
                elif isinstance(r, int):
                    self.output(io.readers[r], io.read(r), log)
                else:
                    self.client_input(r)

    def tend_probes(self, ready, by_fd):
        # type: (list, dict) -> None
        """Read the probes' output, kill those past their deadline."""
        for fd in ready:
            by_fd[fd].read()
        now = time.time()
        for p in list(self.probes.values()):
            if not p.timed_out and now >= p.deadline:
                p.expire()
            self.finish_probe(p)

    def probes_exited(self, statuses):
        # type: (dict) -> None
        for pid, status in statuses.items():
            p = self.probes.get(pid)
            if p is not None:
                p.status = status
                self.finish_probe(p)

    def finish_probe(self, p):
        # type: (probe.Probe) -> None
        if p.done():
            p.answer()
            self.probes.pop(p.pid, None)

    def drain(self, log):
        # type: (logfile.JsonLog) -> None
        """Read what PID 1 and its late children left in the pipes (they are gone now)."""
        deadline = time.time() + 2
        while self.io.readers and time.time() < deadline:
            ready, _, _ = select.select(list(self.io.readers), [], [], 0.2)
            for r in ready:
                self.output(self.io.readers[r], self.io.read(r), log)
            if not ready:
                break

    def pump_pending(self):
        # type: () -> None
        """Copy to the log and the attached clients what is in PID 1's pipes now."""
        for _ in range(64):  # bounded: a process writing without pause cannot hold us here
            ready, _, _ = select.select(list(self.io.readers), [], [], 0)
            if not ready:
                return
            for r in ready:
                self.output(self.io.readers[r], self.io.read(r), self.log)

    def output(self, stream, data, log):
        # type: (int, bytes, logfile.JsonLog) -> None
        if not data:
            return
        log.write(stream, data)
        msg = data if self.io.tty else frame(stream, data)
        for c in list(self.clients):
            if stream in c.streams:
                try:
                    c.sock.sendall(msg)
                except OSError:
                    self.drop(c)

    def accept(self, lsock, recorded=False):
        # type: (socket.socket, bool) -> None
        """One client; recorded: PID 1's exit is on disk (a restart is due), so a wait ends
        at once."""
        conn, _ = lsock.accept()
        conn.settimeout(5)
        try:
            req = recv_msg(conn)
        except (EOFError, OSError, ValueError):
            conn.close()
            return
        conn.settimeout(None)
        op = req.get("op")
        if op == "resize":
            if self.io.master >= 0:
                try:
                    stdio.resize(self.io.master, req.get("h", 24), req.get("w", 80))
                except (OSError, ValueError, TypeError, struct.error):
                    pass  # (the engine checks the size; a bad one must not end the monitor)
            conn.close()
        elif op == "policy":  # `update` of a running container
            if self.backoff is not None:
                self.backoff.policy = req.get("policy")
            extra = tuple(req.get("extra") or ())
            if self.cg is not None and extra != tuple(self.cg.extra):  # update added cpuset/blkio
                self.cg = cgroups.manager(self.cg.parent, self.cg.name, self.cg.version, extra)
            conn.close()
        elif op == "flush":  # `logs`: what PID 1 wrote before the request is in the log first
            if not recorded and self.log is not None:
                self.pump_pending()
            conn.close()
        elif op == "wait" and recorded:
            conn.close()
        elif op == "probe":  # a health check (runtime/container/proc/probe.py)
            if not self.pid1 or recorded:
                conn.close()
                return
            try:
                p = probe.Probe(conn, req, self.pid1, time.time())
            except OSError:
                conn.close()
                return
            self.probes[p.pid] = p
        elif op in ("attach", "wait", "stop"):
            if op == "stop":  # sent before the signal: this exit is not restarted
                self.stop_requested = True
            if op != "attach":
                req = {"stdout": False, "stderr": False}
            self.add_client(conn, req)
        else:
            conn.close()

    def replay(self, client):
        # type: (_Client) -> None
        """Send the log so far (attach with logs=true)."""
        log = self.spec["log"]
        if log["driver"] == "none":
            return
        try:
            for stream, text in logfile.read_all(log["path"], log["driver"], log["max_file"]):
                if stream in client.streams:
                    data = text.encode("utf-8")
                    client.sock.sendall(data if self.io.tty else frame(stream, data))
        except (OSError, ValueError):
            pass

    def client_input(self, sock):
        # type: (socket.socket) -> None
        found = [x for x in self.clients if x.sock is sock]
        if not found:  # dropped earlier in this round: output to it failed (it went away)
            return
        c = found[0]
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if data:
            if c.stdin:
                self.io.write_stdin(data)
            return
        c.reading = False  # the client shut down its write side
        if c.stdin and c.close_stdin:
            self.io.close_stdin()
        if not c.streams:
            self.drop(c)

    def drop(self, c):
        # type: (_Client) -> None
        if c in self.clients:
            self.clients.remove(c)
            c.sock.close()


RESERVE = "exit.reserve"
MONITOR_ERR = "monitor.err"


def _reserve_space():
    # type: () -> None
    """Hold 16 KiB in the state dir, given back when exit.json (or a restart's state.json) finds
    the disk full (the container's own output may fill the data root): the exit is recorded all
    the same."""
    try:
        fd = os.open(RESERVE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"\0" * 16384)
        finally:
            os.close(fd)
    except OSError:
        pass  # already full: nothing to hold


def _give_back_space():
    # type: () -> None
    try:
        os.unlink(RESERVE)
    except OSError:
        pass


def _record(name, doc):
    # type: (str, dict) -> None
    """write_json in the state dir (temp + rename), using the reserved space when the disk is full."""
    try:
        write_json(name, doc)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _give_back_space()
        write_json(name, doc)


def _wake_on_sigchld():
    # type: () -> int
    """Child subreaper, and SIGCHLD written to a pipe (select wakes on it); returns its read end."""
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *a: None)  # not SIG_IGN (the forkserver's): we reap
    signal.set_wakeup_fd(wake_w)
    return wake_r


class Prepared(object):
    """A container's PID 1 forked ahead of its request (see prepare)."""

    def __init__(self, pid, chan, sync_r, go_w, wake_r, cgroup=None):
        # type: (int, socket.socket, int, int, int, cgroups.CgroupV1) -> None
        self.pid, self.chan, self.sync_r, self.go_w, self.wake_r = pid, chan, sync_r, go_w, wake_r
        self.cgroup = cgroup  # the spare's cgroup (nursery.make), or None; PID 1 says if it is in

    def abandon(self):
        # type: () -> None
        """The spare was not used: end PID 1 (its channel closes) and remove its cgroup."""
        self.chan.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        nursery.release(self.cgroup)


def prepare(stage_dir=None, cgroup_parent=None):
    # type: (str, str) -> Prepared
    """In the forkserver's spare (the next monitor), before any request: a new PID namespace
    and its PID 1, which makes its other namespaces right away (runtime/container/proc/init.py
    prepared_main). Namespace creation (~2-4 ms, the network one most) is then off the
    start path. The Monitor gets the result; an unused one ends when the spare does.
    What a monitor does first whatever the request (and the JSON codec it will use) is done
    here too: the spare's first touch of each page it shares with the forkserver is a
    copy-on-write fault, ~1 ms of them on the start path otherwise. On cgroup v1, PID 1 then
    waits in a cgroup of its own under cgroup_parent, which the start renames to the
    container's (nursery.py), entered by PID 1 itself without the kernel's grace period."""
    wake_r = _wake_on_sigchld()
    json.loads(json.dumps({"warm": [1, 2.5, "x", None, True, {"up": False}]}))
    host_net = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    chan, child_chan = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sync_r, sync_w = os.pipe()
    go_r, go_w = os.pipe()
    cgroup = nursery.make(cgroup_parent)
    sc.unshare(sc.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        chan.close()
        os.close(sync_r)
        os.close(go_w)
        init.prepared_main(child_chan, host_net, sync_w, go_r, stage_dir, cgroup)
    child_chan.close()
    for fd in (host_net, sync_w, go_r):
        os.close(fd)
    return Prepared(pid, chan, sync_r, go_w, wake_r, cgroup)


def _device_rules(spec):
    # type: (dict) -> dict
    """The run spec's device rules for the cgroup (devices.apply), Docker's defaults if none."""
    return spec.get("devices") or {"rules": list(cgroups.DEVICE_RULES)}


def _recv_first(chan):
    # type: (socket.socket) -> tuple
    """The first message of a prepared PID 1: (the fd of its mount namespace or -1, whether it
    is in the spare's cgroup)."""
    try:
        msg, fds = recv_fds(chan, 16, 1)
    except OSError:
        return -1, False
    return (fds[0] if fds else -1), msg == init.FIRST_IN_CGROUP


def _start_time(pid):
    # type: (int) -> int
    """Field 22 of /proc/<pid>/stat (readable even for our unreaped zombie)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rfind(")") + 2:].split()[19])


def _reap(pid, others=None):
    # type: (int, dict) -> int
    """Reap every exited child; PID 1's wait status when it is among them (the others' go
    into `others`, pid -> status)."""
    found = None
    while True:
        try:
            wpid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if wpid == 0:
            return found
        if wpid == pid:
            found = status
        elif others is not None:
            others[wpid] = status
