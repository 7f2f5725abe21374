"""`exec` instances (the exec half of ContainerBackend; ContainerService holds one Execs).

An exec's config is `exec/<id>.config.json` in its container's dir; the helper that runs it
(runtime/container/proc/execproc.py) writes `exec/<id>.json` (Running, ExitCode, Pid).
"""

import binascii
import os
import socket

from runtime.container import spec
from runtime.container.state import proc_start_time
from runtime.atomicfile import read_json, write_json
from runtime.container.proc.wire import send_msg
from runtime.errors import Conflict, InvalidParameter, NotFound


class Execs(object):
    """The execs of the containers in `containers` (a ContainerIndex), run through `spawner`."""

    def __init__(self, containers, spawner, security=None):
        # type: (object, object, object) -> None
        """security(container) -> the process fields (seccomp, no_new_privs) an exec inherits
        from its container."""
        self.containers = containers
        self.spawner = spawner
        self.security = security

    def ids(self, c):
        # type: (object) -> list
        try:
            names = os.listdir(c.file("exec"))
        except OSError:
            return []
        return sorted(n[:-len(".config.json")] for n in names if n.endswith(".config.json"))

    def _find_exec(self, exec_id):
        # type: (str) -> tuple
        for c in self.containers.all():
            cfg = read_json(os.path.join(c.file("exec"), exec_id + ".config.json"))
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
        write_json(os.path.join(c.file("exec"), exec_id + ".config.json"), cfg)
        return exec_id

    def start(self, exec_id, detach=False, tty=False):
        # type: (str, bool, bool) -> object
        """Run it through the forkserver: None when detached, else the connected socket."""
        c, cfg = self._find_exec(exec_id)
        st = c.state()
        if not st["Running"]:
            raise Conflict("Container %s is not running" % c.id)
        if os.path.exists(os.path.join(c.file("exec"), exec_id + ".json")):
            raise Conflict("Error: Exec command %s has already run" % exec_id)
        conf, cc = cfg["Config"], c.cfg["Config"]
        env = list(cc.get("Env") or []) + list(conf.get("Env") or [])
        run = {
            "exec_id": exec_id, "exec_dir": c.file("exec"), "pid": st["Pid"], "detach": bool(detach),
            "tty": bool(conf.get("Tty") or tty), "stdin": bool(conf.get("AttachStdin")),
            "console_size": conf.get("ConsoleSize") if any(conf.get("ConsoleSize") or []) else None,
            "cgroup_procs": c.cgroup().procs_files(),
            "process": {"args": cfg["Cmd"], "env": env, "cwd": conf.get("WorkingDir") or cc.get("WorkingDir"),
                        "user": conf.get("User") or cc.get("User") or "",
                        "caps": spec.capabilities(dict(c.cfg["HostConfig"], Privileged=bool(
                            conf.get("Privileged") or c.cfg["HostConfig"].get("Privileged")))),
                        "no_new_privs": False, "group_add": c.cfg["HostConfig"].get("GroupAdd") or []},
        }
        if self.security is not None:
            run["process"].update(self.security(c))
        reply, sock = self.spawner.request("exec", run)
        if "error" in reply:
            sock.close()
            raise InvalidParameter("exec failed: %s" % reply["error"])
        if detach:
            sock.close()
            return None
        return sock

    def inspect(self, exec_id):
        # type: (str) -> dict
        """ExecInspectResponse."""
        c, cfg = self._find_exec(exec_id)
        res = read_json(os.path.join(c.file("exec"), exec_id + ".json"), {}) or {}
        running = bool(res.get("Running"))
        if running and proc_start_time(res.get("Pid") or 0) < 0:
            running = False  # the helper died without recording the end
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
