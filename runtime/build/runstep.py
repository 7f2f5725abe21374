"""RUN: one step in a container of the engine (the container service's create, attach, start,
wait and remove), its writable layer committed as the step's layer."""

import collections
import socket  # noqa: F401 (type comments)

from runtime import TYPE_CHECKING, framing
from runtime.errors import BerthError, InvalidParameter
from runtime.services.containerfs import mount_points
from runtime.store import newlayer

if TYPE_CHECKING:
    from typing import Any  # noqa: F401


class BuildError(BerthError):
    """A step failed (the message names the step)."""


class RunStep(object):
    """One RUN in a container of the engine: create, attach, start, stream, wait, commit the
    upper dir as the layer, remove (rm / forcerm)."""

    def __init__(self, builder, stage, inst, argv, arg_env):
        # type: (Any, Any, Any, list, list) -> None
        self.b, self.stage, self.inst, self.argv, self.arg_env = builder, stage, inst, argv, arg_env

    def _config(self):
        # type: () -> dict
        cfg = self.stage.cfg
        opts = self.b.opts
        mode = opts.networkmode if opts.networkmode in ("host", "none") else "none"
        hc = {"NetworkMode": mode}
        hc.update(opts.host_config)
        return {"Image": self.stage.image_id, "Cmd": self.argv, "Entrypoint": [],
                "Env": list(cfg.get("Env") or []) + self.arg_env,
                "WorkingDir": cfg.get("WorkingDir") or "", "User": cfg.get("User") or "",
                "AttachStdout": True, "AttachStderr": True, "Labels": {},
                "HostConfig": hc}

    def run(self, image_cfg, created_by):
        # type: (dict, str) -> str
        containers = self.b.service.containers
        cid = containers.container_create(self._config())["Id"]
        self.b.say(" ---> Running in %s\n" % cid[:12])
        ok = False
        try:
            if self.b.opts.extrahosts:
                self._extra_hosts(cid)
            sock = containers.container_attach(cid, stdout=True, stderr=True, stream=True)
            containers.container_start(cid)
            tail = self._stream(sock)
            code = containers.container_wait(cid)["StatusCode"]
            if code != 0:
                last = "".join(tail).strip().splitlines()[-5:]
                raise BuildError("The command '%s' returned a non-zero code: %d (step %d/%d, "
                                 "Dockerfile line %d)%s" % (
                                     " ".join(self.argv), code, self.b.step, self.b.total,
                                     self.inst.line,
                                     ("; last output: " + " | ".join(last)) if last else ""))
            upper = containers.container_upper_dir(cid)
            exclude = mount_points(upper)
            write = newlayer.diff_writer(self.b.store, upper, self.stage.image_id, exclude,
                                         containers.container_id_maps(cid))
            image_id = self.b._layer_step(self.stage, image_cfg, created_by, write)
            ok = True
            return image_id
        finally:
            if self.b.opts.forcerm or self.b.opts.rm or not ok:
                try:
                    containers.container_remove(cid, force=True, volumes=True)
                    if ok:
                        self.b.say(" ---> Removed intermediate container %s\n" % cid[:12])
                except BerthError:
                    pass

    def _extra_hosts(self, cid):
        # type: (str) -> None
        lines = []
        for h in self.b.opts.extrahosts:
            name, sep, addr = h.partition(":")
            if not sep or not name or not addr:
                raise InvalidParameter("invalid extra host %r: use NAME:IP" % h)
            lines.append("%s\t%s\n" % (addr, name))
        with open(self.b.service.index.get(cid).file("hosts"), "a") as f:
            f.write("".join(lines))

    def _stream(self, sock):
        # type: (socket.socket) -> list
        """Relay the container's output (8-byte frames) as stream messages; returns its tail."""
        tail = collections.deque(maxlen=20)  # type: collections.deque
        buf = b""
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= framing.HEADER.size:
                    stream, size = framing.HEADER.unpack_from(buf)
                    end = framing.HEADER.size + size
                    if len(buf) < end:
                        break
                    text = buf[framing.HEADER.size:end].decode("utf-8", "replace")
                    buf = buf[end:]
                    tail.append(text)
                    # docker marks stderr in red: ESC[91m ... ESC[0m
                    self.b.say("\x1b[91m%s\x1b[0m" % text if stream == framing.STDERR else text)
        return list(tail)

