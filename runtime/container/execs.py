"""`exec` instances (the exec half of ContainerBackend; ContainerService holds one Execs).

An exec's config is `exec/<id>.config.json` in its container's dir; the helper that runs it
(runtime/container/proc/execproc.py) writes `exec/<id>.json` (Running, ExitCode, Pid).
"""

import binascii
import collections
import os
import socket
import threading
import time

from runtime.container import spec
from runtime.container.state import proc_start_time
from runtime.atomicfile import read_json, write_json
from runtime.container.proc.wire import send_msg
from runtime.errors import Conflict, ExecFailed, InvalidParameter, NotFound
from runtime.events import container_event
from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Iterator, Optional  # noqa: F401


RECENT = 10000  # execs whose container is known without a search (~1 MB)
KEEP_ENDED = 256  # ended execs kept per container for inspection (the oldest go beyond it)


def _config_file(c, exec_id):
    # type: (Any, str) -> str
    """exec/<id>.config.json in the container's dir."""
    return os.path.join(c.file("exec"), exec_id + ".config.json")


def _result_file(c, exec_id):
    # type: (Any, str) -> str
    """exec/<id>.json in the container's dir: what the exec's helper records (Running, ExitCode, Pid)."""
    return os.path.join(c.file("exec"), exec_id + ".json")


def _running(res):
    # type: (dict) -> bool
    """Whether the exec whose helper recorded res still runs (a helper that died without
    recording the end has a Pid no longer alive)."""
    return bool(res.get("Running")) and proc_start_time(res.get("Pid") or 0) >= 0


def run_spec(c, pid, exec_id, exec_dir, cmd, conf, detach=False, tty=None):
    # type: (object, int, str, str, list, dict, bool, Optional[bool]) -> dict
    """What runtime/container/proc/execproc.py needs to run cmd in c (whose PID 1 is pid) with the
    exec config conf (Env, User, WorkingDir, Tty, AttachStdin, Privileged...)."""
    cc, hc = c.cfg["Config"], c.cfg["HostConfig"]
    env = list(cc.get("Env") or []) + list(conf.get("Env") or [])
    privileged = bool(conf.get("Privileged") or hc.get("Privileged"))
    return {
        "exec_id": exec_id, "exec_dir": exec_dir, "pid": pid, "detach": bool(detach),
        # the process gets a pty when the exec was created with Tty; the output is framed
        # unless the start says Tty (dockerd: docker-py starts a TTY exec with Tty false)
        "tty": bool(conf.get("Tty")), "raw": bool(conf.get("Tty") if tty is None else tty),
        "stdin": bool(conf.get("AttachStdin")),
        "console_size": conf.get("ConsoleSize") if any(conf.get("ConsoleSize") or []) else None,
        "cgroup_procs": c.cgroup().join_files(),  # (the key's old name: running monitors read it)
        "process": {"args": list(cmd), "env": env, "cwd": conf.get("WorkingDir") or cc.get("WorkingDir"),
                    "user": conf.get("User") or cc.get("User") or "",
                    "caps": spec.capabilities(dict(hc, Privileged=privileged)),
                    "no_new_privs": False, "group_add": hc.get("GroupAdd") or []},
    }


class Execs(object):
    """The execs of the containers in `containers` (a ContainerIndex), run through `spawner`."""

    def __init__(self, containers, spawner, security=None, events=None):
        # type: (object, object, object, object) -> None
        """security(container) -> the process fields (seccomp, no_new_privs) an exec inherits
        from its container; events: runtime.events.EventLog (exec_create, exec_start, exec_die)."""
        self.containers = containers
        self.spawner = spawner
        self.security = security
        self.events = events
        # exec id -> container id of the latest execs made, so that finding one reads one file
        # rather than trying every container's directory (1,000s of opens under load)
        self.recent = collections.OrderedDict()  # type: collections.OrderedDict
        self.recent_lock = threading.Lock()

    def ids(self, c):
        # type: (object) -> list
        try:
            names = os.listdir(c.file("exec"))
        except OSError:
            return []
        return sorted(n[:-len(".config.json")] for n in names if n.endswith(".config.json"))

    def forget(self, c):
        # type: (Any) -> None
        """Drop every exec record of c: called when it starts again (the execs of an earlier
        run ended with it, as their ids do in dockerd)."""
        d = c.file("exec")
        try:
            names = os.listdir(d)
        except OSError:
            return
        for n in names:
            try:
                os.unlink(os.path.join(d, n))
            except OSError:
                pass
        with self.recent_lock:
            for n in names:
                self.recent.pop(n.split(".", 1)[0], None)

    def _trim(self, c, names):
        # type: (Any, list) -> None
        """Past KEEP_ENDED execs in c's dir (names: its listing), remove the oldest ended ones
        down to half of it, so the directory does not grow with every exec of a long run (a
        health check's exec each few seconds). Running ones are kept."""
        d = c.file("exec")
        ended = []
        for n in names:
            if not n.endswith(".config.json"):
                continue
            exec_id = n[:-len(".config.json")]
            res = read_json(_result_file(c, exec_id), {}) or {}
            if res and not _running(res):
                try:
                    ended.append((os.stat(os.path.join(d, n)).st_mtime, exec_id))
                except OSError:
                    pass
        ended.sort()
        for _, exec_id in ended[:max(0, len(ended) - KEEP_ENDED // 2)]:
            for suffix in (".json", ".config.json", ".sock"):
                try:
                    os.unlink(os.path.join(d, exec_id + suffix))
                except OSError:
                    pass
            with self.recent_lock:
                self.recent.pop(exec_id, None)

    def _candidates(self, exec_id):
        # type: (str) -> Iterator[Any]
        """The container that made exec_id when it is a recent one, then every container (an
        older exec, or one made before this engine started), listed only if need be."""
        with self.recent_lock:
            cid = self.recent.get(exec_id)
        if cid is not None:
            try:
                yield self.containers.get(cid)
            except NotFound:
                pass
        for c in self.containers.all():
            yield c

    def _find_exec(self, exec_id):
        # type: (str) -> tuple
        for c in self._candidates(exec_id):
            cfg = read_json(_config_file(c, exec_id))
            if cfg is not None:
                return c, cfg
        raise NotFound("No such exec instance: %s" % exec_id)

    def create(self, name, config):
        # type: (str, dict) -> str
        """A new exec of config["Cmd"] in the running container; returns its id."""
        c = self.containers.get(name)
        st = c.state()
        if not st["Running"]:
            raise Conflict("Container %s is not running" % name)
        if st["Paused"]:
            raise Conflict("Container %s is paused, unpause the container before exec" % name)
        cmd = config.get("Cmd") or []
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidParameter("No exec command specified")
        exec_id = binascii.hexlify(os.urandom(32)).decode()
        cfg = {"ID": exec_id, "ContainerID": c.id, "Config": dict(config), "Cmd": list(cmd)}
        os.makedirs(c.file("exec"), exist_ok=True)
        names = os.listdir(c.file("exec"))
        if len(names) > 2 * KEEP_ENDED:  # about 2 files per ended exec: a trim now and then
            self._trim(c, names)
        write_json(_config_file(c, exec_id), cfg)
        with self.recent_lock:
            self.recent[exec_id] = c.id
            while len(self.recent) > RECENT:
                self.recent.popitem(last=False)
        container_event(self.events, c, "exec_create: " + " ".join(cfg["Cmd"]), execID=exec_id)
        return exec_id

    def start(self, exec_id, detach=False, tty=None):
        # type: (str, bool, Optional[bool]) -> object
        """Run it through the forkserver: None when detached, else the connected socket."""
        c, cfg = self._find_exec(exec_id)
        st = c.state()
        if not st["Running"]:
            raise Conflict("Container %s is not running" % c.id)
        if os.path.exists(_result_file(c, exec_id)):
            raise Conflict("Error: Exec command %s has already run" % exec_id)
        run = run_spec(c, st["Pid"], exec_id, c.file("exec"), cfg["Cmd"], cfg["Config"], detach, tty)
        if self.security is not None:
            run["process"].update(self.security(c))
        reply, sock = self.spawner.request("exec", run)
        container_event(self.events, c, "exec_start: " + " ".join(cfg["Cmd"]), execID=exec_id)
        if "error" in reply:
            sock.close()
            code = reply.get("code", 126)
            write_json(_result_file(c, exec_id),
                       {"ExitCode": code, "Running": False, "Pid": 0})
            container_event(self.events, c, "exec_die", execID=exec_id, exitCode=code)
            raise ExecFailed("exec failed: %s" % reply["error"])
        t = threading.Thread(target=self._exec_die, args=(c, exec_id), name="exec-" + exec_id[:12])
        t.daemon = True
        t.start()
        if detach:
            sock.close()
            return None
        return sock

    def _exec_die(self, c, exec_id):
        # type: (object, str) -> None
        """Emit exec_die once the exec's helper recorded the end (polled, less often as it runs;
        a process gone for a second without a record ends it too)."""
        path = _result_file(c, exec_id)
        pause, gone_since = 0.01, None
        while True:
            res = read_json(path, {}) or {}
            if res.get("ExitCode") is not None or not os.path.exists(c.path):
                break
            if res.get("Pid") and proc_start_time(res["Pid"]) < 0:
                gone_since = gone_since or time.time()
                if time.time() - gone_since > 1:
                    break
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)
        container_event(self.events, c, "exec_die", execID=exec_id, exitCode=res.get("ExitCode", -1))

    def inspect(self, exec_id):
        # type: (str) -> dict
        """ExecInspectResponse."""
        c, cfg = self._find_exec(exec_id)
        res = read_json(_result_file(c, exec_id), {}) or {}
        running = _running(res)
        conf = cfg["Config"]
        return {
            "ID": exec_id, "ContainerID": c.id, "Running": running, "ExitCode": res.get("ExitCode"),
            "Pid": res.get("Pid", 0), "CanRemove": False,
            "DetachKeys": conf.get("DetachKeys") or "",
            "OpenStdin": bool(conf.get("AttachStdin")), "OpenStdout": bool(conf.get("AttachStdout", True)),
            "OpenStderr": bool(conf.get("AttachStderr", True)),
            "ProcessConfig": {"tty": bool(conf.get("Tty")), "entrypoint": cfg["Cmd"][0],
                              "arguments": cfg["Cmd"][1:], "privileged": bool(conf.get("Privileged")),
                              "user": conf.get("User") or ""},
        }

    def resize(self, exec_id, height, width):
        # type: (str, int, int) -> None
        """Set the exec's TTY size (Conflict unless it runs with a TTY)."""
        c, cfg = self._find_exec(exec_id)
        if not self.inspect(exec_id)["Running"] or not cfg["Config"].get("Tty"):
            raise Conflict("exec %s is not running with a TTY" % exec_id)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fd = -1
        try:
            fd = os.open(c.file("exec"), os.O_RDONLY | os.O_DIRECTORY)
            s.connect("/proc/self/fd/%d/%s.sock" % (fd, exec_id))
            send_msg(s, {"op": "resize", "h": int(height), "w": int(width)})
            s.settimeout(5)
            s.recv(1)  # closed once applied
        except OSError as e:
            raise Conflict("cannot resize exec %s: %s" % (exec_id, e)) from None
        finally:
            if fd >= 0:
                os.close(fd)
            s.close()
