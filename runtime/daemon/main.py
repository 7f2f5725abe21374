"""`berthd`: read daemon.json, recover the engine's state, serve the API on unix sockets.

SIGTERM/SIGINT: stop serving, remove the sockets and the pidfile, exit 0; containers keep
running (their monitors are separate processes). SIGHUP: re-read the config file and apply
the reloadable keys (runtime.daemon.config.RELOADABLE); a bad file is logged and ignored.
SIGUSR1: write every thread's stack and what the daemon holds to a file in the data root
(runtime.daemon.diagnostics).
"""

import argparse
import logging
import os
import signal
import sys
import threading
import time

from runtime import TYPE_CHECKING, __version__
from runtime.atomicfile import write_text
from runtime.daemon import config as cfgmod
from runtime.daemon import diagnostics, memory

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional  # noqa: F401

log = logging.getLogger("berthd")


def build_parser():
    # type: () -> argparse.ArgumentParser
    """berthd's flags (dockerd's names)."""
    p = argparse.ArgumentParser(prog="berthd", description="berth's container engine daemon "
                                "(serves the Docker Engine API on unix sockets).")
    p.add_argument("--config-file", default=None,
                   help="daemon configuration file (default %s)" % cfgmod.DEFAULT_CONFIG_FILE)
    p.add_argument("--validate", action="store_true", help="check the configuration file and exit")
    p.add_argument("--data-root", default=None, help="root of the engine's state (default /var/lib/berth)")
    p.add_argument("-H", "--host", action="append", default=None,
                   help="where to listen: unix:///path, or tcp://ADDRESS:PORT with TLS (repeatable; "
                   "default %s)" % cfgmod.DEFAULT_HOST)
    p.add_argument("--tls", nargs="?", const=True, default=None, type=_boolean, metavar="BOOL",
                   help="serve tcp:// hosts with TLS (the default); --tls=false serves plain TCP, "
                   "which gives root here to anyone who reaches the port")
    p.add_argument("--tlsverify", action="store_true", default=None,
                   help="TLS and require client certificates signed by --tlscacert")
    p.add_argument("--tlscacert", default=None, help="CA certificate (PEM) client certificates must chain to")
    p.add_argument("--tlscert", default=None, help="the server's TLS certificate (PEM)")
    p.add_argument("--tlskey", default=None, help="the server's TLS key (PEM)")
    p.add_argument("-G", "--group", default=None, help="group owning the socket (default docker)")
    p.add_argument("-p", "--pidfile", default=None, help="write the daemon's pid here")
    p.add_argument("--cgroup-parent", default=None, help="parent cgroup of all containers")
    p.add_argument("-D", "--debug", action="store_true", default=None, help="debug logging")
    p.add_argument("-l", "--log-level", default=None, choices=cfgmod.LOG_LEVELS)
    p.add_argument("--check-store", action="store_true",
                   help="check the data root (blobs re-hashed, layers, images, references, "
                   "containers, volumes), print each inconsistency with its fix and exit "
                   "(1 when any is left)")
    p.add_argument("--repair", action="store_true",
                   help="with --check-store: apply the safe fixes (berthd must be stopped)")
    p.add_argument("--remove-network", action="store_true",
                   help="remove the engine's bridges, their veths, its iptables chains and its "
                   "firewalld zone from the host, and exit (an uninstall; berthd must be stopped)")
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    return p


def _boolean(text):
    # type: (str) -> bool
    low = text.strip().lower()
    if low in ("1", "t", "true", "yes"):
        return True
    if low in ("0", "f", "false", "no"):
        return False
    raise argparse.ArgumentTypeError("%r is not a boolean (true or false)" % text)


def setup_logging(level):
    # type: (str) -> None
    """Log to stderr (journald adds time and unit under systemd)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    names = {"warn": "WARNING", "fatal": "CRITICAL"}
    root.setLevel(names.get(level, level.upper()))


def _flag_keys(args):
    # type: (argparse.Namespace) -> Dict[str, Any]
    return {"data-root": args.data_root, "hosts": args.host, "group": args.group,
            "pidfile": args.pidfile, "cgroup-parent": args.cgroup_parent, "debug": args.debug,
            "log-level": args.log_level, "tls": args.tls, "tlsverify": args.tlsverify,
            "tlscacert": args.tlscacert, "tlscert": args.tlscert, "tlskey": args.tlskey}


class Pidfile(object):
    """The daemon's pidfile; refuses to start over a live daemon's."""

    def __init__(self, path):
        # type: (str) -> None
        self.path = path
        try:
            with open(path) as f:
                pid = int(f.read().strip() or "0")
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and os.path.exists("/proc/%d" % pid):
            raise RuntimeError("pid file %s names a running process (%d): is another berthd running?"
                               % (path, pid))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_text(path, "%d\n" % os.getpid())

    def remove(self):
        # type: () -> None
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Daemon(object):
    """The running daemon: engine, one API server per socket, signal handling."""

    def __init__(self, cfg, config_file, explicit, flag_keys):
        # type: (Dict[str, Any], str, bool, Dict[str, Any]) -> None
        self.cfg = cfg
        self.config_file = config_file
        self.explicit = explicit
        self.flag_keys = flag_keys
        self.stop_event = threading.Event()
        self.listeners = []  # type: List[Any]
        self.engine = None  # type: Any
        self.trimmer = None  # type: Optional[memory.IdleTrimmer]

    def start(self):
        # type: () -> None
        """Recover the engine, then listen."""
        from runtime.api import admission
        from runtime.api.server import APIHandler, APIServer, default_router
        from runtime.daemon import sockets
        from runtime.engine import Engine

        gid = sockets.resolve_group(self.cfg["group"])
        bound = []
        for path in cfgmod.socket_paths(self.cfg):  # first, so a socket in use changes nothing
            sock, ino = sockets.listen_unix(path, gid, admission.listen_backlog())
            bound.append((path, ino, sock))
            self.listeners.append((path, ino, sock, None, None))
        tcp_bound = self._listen_tcp()
        os.makedirs(self.cfg["data-root"], mode=0o711, exist_ok=True)
        self.engine = Engine(data_root=self.cfg["data-root"], config=self.cfg)  # recovers state
        if self.engine.storage.warning:
            log.warning("%s", self.engine.storage.warning)
        kept = 0
        for finding in self.engine.start_findings:
            if finding.reusable and not finding.repaired:
                kept += 1  # an interrupted download's content, which a pull reuses
            else:
                log.warning("data root check: %s", finding.line())
        if kept:
            log.info("data root check: %d leftover(s) of interrupted downloads kept for reuse "
                     "(`berthd --check-store --repair` removes them)", kept)
        router = default_router(self.engine.backends())
        self.trimmer = memory.IdleTrimmer()
        slots = admission.Slots(self.cfg.get("max-concurrent-requests") or admission.default_count(),
                                float(os.environ.get("BERTH_API_QUEUE_SECONDS") or admission.QUEUE_SECONDS),
                                on_idle=self.trimmer.poke)
        log.info("API: %d requests served at once, more wait (up to %.0f s) in arrival order",
                 slots.count, slots.queue_seconds)
        self.listeners = []
        for path, ino, sock in bound:  # connections made meanwhile wait in the backlog
            server = APIServer(sock, router, self.engine.data_root, slots)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 3600},
                                      name="api " + path, daemon=True)
            self.listeners.append((path, ino, sock, server, thread))
            thread.start()
            log.info("API listening on %s (group %s, mode 0660)", path, self.cfg["group"])
        for host, sock, context in tcp_bound:
            from runtime.api import tcp  # (and ssl: only for a daemon with tcp:// hosts)
            server = tcp.TCPServer(sock, APIHandler, _Served(router, self.engine.data_root, slots), context)
            thread = threading.Thread(target=server.serve_forever, name="api " + host, daemon=True)
            self.listeners.append((host, None, sock, server, thread))
            thread.start()
            log.info("API listening on %s (%s)", host, {"verify": "TLS, client certificates "
                     "verified", "tls": "TLS, any client", "plain": "plain TCP"}[cfgmod.tls_mode(self.cfg)])
        started = self.engine.start_by_policy()  # in parallel, while the API serves
        if started:
            log.info("starting %d container(s) by their restart policy", len(started))

    def _listen_tcp(self):
        # type: () -> List[Any]
        """Bind the tcp:// hosts: [(host, socket, SSL context or None)]."""
        hosts = cfgmod.tcp_hosts(self.cfg)
        if not hosts:
            return []
        from runtime.api import admission, tcp
        mode = cfgmod.tls_mode(self.cfg)
        context = None
        if mode == "plain":
            for host, _, _ in hosts:
                log.warning("API listening on %s WITHOUT TLS: anyone who can reach this port can "
                            "run any container, mount any file and so get root on this host; "
                            "use tlsverify with tlscacert, tlscert and tlskey", host)
        else:
            cfg = self.cfg
            context = tcp.server_context(cfg["tlscert"], cfg["tlskey"],
                                         cfg["tlscacert"] if mode == "verify" else None)
            if mode == "tls":
                log.warning("tcp hosts serve TLS without verifying clients: anyone who can reach "
                            "the port can use the API (set tlsverify and tlscacert)")
        out = []
        for host, address, port in hosts:
            try:
                sock = tcp.listen_tcp(address, port, admission.listen_backlog())
            except OSError as exc:
                raise RuntimeError("cannot listen on %s: %s" % (host, exc.strerror or exc)) from None
            out.append((host, sock, context))
            self.listeners.append((host, None, sock, None, None))
        return out

    def reload(self):
        # type: () -> None
        """SIGHUP: apply the reloadable keys of the config file as it is now."""
        try:
            keys = cfgmod.load(self.config_file, self.explicit)
            new = cfgmod.merged(keys, self.flag_keys)
        except cfgmod.ConfigError as exc:
            log.error("reload refused, configuration unchanged: %s", exc)
            return
        changed = [k for k in cfgmod.RELOADABLE if new.get(k) != self.cfg.get(k)]
        for key in cfgmod.RELOADABLE:
            self.cfg[key] = new[key]
        self.cfg["log-level"] = new["log-level"]
        setup_logging(self.cfg["log-level"])
        if self.engine is not None:  # its services read this dict on use
            self.engine.config.update({k: self.cfg[k] for k in cfgmod.RELOADABLE})
        log.info("configuration reloaded from %s; changed: %s", self.config_file,
                 ", ".join(changed) or "nothing")

    def stop(self):
        # type: () -> None
        """Stop serving and remove the sockets; containers keep running."""
        from runtime.daemon import sockets
        for path, ino, sock, server, _thread in self.listeners:
            if server is not None:
                threading.Thread(target=server.shutdown, daemon=True).start()
            if ino is None:  # a tcp:// host
                sock.close()
            else:
                sockets.remove_socket(path, ino, sock)
        if self.trimmer is not None:
            self.trimmer.stop()
        if self.engine is not None:
            self.engine.close()
        log.info("berthd stopped")


class _Served(object):
    """What a TCP connection's handler sees as its server (a unix socket's sees the APIServer)."""

    def __init__(self, router, data_root, slots=None):
        # type: (Any, str, Any) -> None
        self.router = router
        self.data_root = data_root
        self.slots = slots


def _signal_wakeup():
    # type: () -> int
    """A pipe the C signal handler writes to. A signal may be delivered to any thread; Python
    runs its handler in the main thread only, and a main thread blocked on a lock would not
    notice: so the main thread waits in select() on this pipe instead."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    return r


def _wait_for_signal(fd, events):
    # type: (int, List[threading.Event]) -> None
    """Return once a signal handler has set one of events."""
    import select
    while not any(e.is_set() for e in events):
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            os.read(fd, 512)


def _dump(directory):
    # type: (str) -> None
    """SIGUSR1: write what the daemon is doing and holding (runtime.daemon.diagnostics)."""
    started = time.monotonic()
    try:
        path = diagnostics.dump(directory)
        log.info("threads and memory written to %s (%.1f s)", path, time.monotonic() - started)
    except OSError as exc:
        log.error("SIGUSR1: could not write the dump in %s: %s", directory, exc)
    except Exception:  # noqa: BLE001 - a diagnostic never takes the daemon down
        log.exception("SIGUSR1: the dump failed")


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    if args.version:
        print("berthd version %s" % __version__)
        return 0
    config_file = args.config_file or cfgmod.DEFAULT_CONFIG_FILE
    explicit = args.config_file is not None
    flag_keys = _flag_keys(args)
    try:
        file_keys = cfgmod.load(config_file, explicit)
        cfg = cfgmod.merged(file_keys, flag_keys)
        cfgmod.check_listeners(cfg, config_file)
    except cfgmod.ConfigError as exc:
        sys.stderr.write("berthd: unable to configure the daemon with file %s\n" % exc)
        return 1
    if args.validate:
        print("configuration OK")
        return 0
    if args.repair and not args.check_store:
        sys.stderr.write("berthd: --repair goes with --check-store\n")
        return 1
    if args.check_store:
        from runtime.daemon import checkstore
        return checkstore.main(cfg, args.repair, sys.stdout, sys.stderr)
    if args.remove_network:
        from runtime.daemon import netclean
        return netclean.main(cfg, sys.stdout, sys.stderr)
    memory.arenas_capped()
    setup_logging(cfg["log-level"])
    try:
        diagnostics.trace_from_env()
    except ValueError as exc:
        sys.stderr.write("berthd: %s\n" % exc)
        return 1
    if os.geteuid() != 0:
        sys.stderr.write("berthd: must run as root (it creates namespaces, mounts and cgroups)\n")
        return 1
    pidfile = None
    daemon = Daemon(cfg, config_file, explicit, flag_keys)
    try:
        if cfg["pidfile"]:
            pidfile = Pidfile(cfg["pidfile"])
        signal.signal(signal.SIGTERM, lambda *a: daemon.stop_event.set())
        signal.signal(signal.SIGINT, lambda *a: daemon.stop_event.set())
        hup = threading.Event()
        signal.signal(signal.SIGHUP, lambda *a: (hup.set(), daemon.stop_event.set()))
        usr1 = threading.Event()
        signal.signal(signal.SIGUSR1, lambda *a: usr1.set())
        wake = _signal_wakeup()
        daemon.start()
        log.info("berthd %s started (data root %s)", __version__, cfg["data-root"])
        while True:
            _wait_for_signal(wake, [daemon.stop_event, usr1])
            if usr1.is_set():
                usr1.clear()
                _dump(cfg["data-root"])
                continue
            if hup.is_set():
                hup.clear()
                daemon.stop_event.clear()
                daemon.reload()
                continue
            break
    except Exception as exc:  # a start failure is one line, not a traceback
        log.debug("start failed", exc_info=True)
        sys.stderr.write("berthd: %s\n" % exc)
        daemon.stop()
        if pidfile:
            pidfile.remove()
        return 1
    daemon.stop()
    if pidfile:
        pidfile.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
