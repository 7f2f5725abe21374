"""SSH transport over Paramiko: one connection per target (ssh config aliases, agent, keys,
``--jump`` hosts), one exec channel per command, SFTP for large files. Unknown host keys are
refused unless the caller explicitly accepts new ones (which then records them in the
known_hosts file).

Why Paramiko itself rather than Fabric's ``Connection.run`` (with Invoke's ``Context.run``
locally): a run is dozens of short commands per host, and Invoke's runner polls its stream
threads every 10 ms and feeds stdin one character per poll, so each short command costs
several times more, and a sudo password on stdin more still (``bench/transport_exec.py``
prints the ratio). Fabric's host strings also have no form for an IPv6 address with a port
(``[v6addr]:port``). What Fabric adds for connecting is ``paramiko.SSHConfig`` lookup and a
``direct-tcpip`` channel through a gateway: both are below, on the same Paramiko.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

import paramiko

from provision.errors import ConnectError, InputError
from provision.transport import STAGE_PREFIX, Result, Transport

_KNOWN_HOSTS_LOCK = threading.Lock()
# A connection whose peer went silent (a cable pulled, a firewall dropping its packets) is
# declared dead instead of waiting for the command timeout: a keepalive after ALIVE_INTERVAL s
# of silence, and TCP gives up on data unacknowledged for ALIVE_TIMEOUT s.
ALIVE_INTERVAL = 5
ALIVE_TIMEOUT = 20
USER_SSH_CONFIG = "~/.ssh/config"
SYSTEM_SSH_CONFIG = "/etc/ssh/ssh_config"
USER_KNOWN_HOSTS = "~/.ssh/known_hosts"  # OpenSSH's (and Paramiko's "system") known_hosts
# parsed known_hosts files, shared by the transports of a run: {path: ((mtime, size), keys)}
_KNOWN_HOSTS: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}


@dataclass
class SSHOptions:
    """How to reach targets: shared by every host of one run."""

    identities: list[str] = field(default_factory=list)
    password: str | None = None  # --ask-pass
    become_password: str | None = None  # --ask-become-pass / --sudo-password-file
    jump: str | None = None  # [user@]host[:port]
    known_hosts: str = "~/.ssh/known_hosts"
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    ssh_config: str | None = None  # default: ~/.ssh/config


def known_hosts(path: str, must_exist: bool = False) -> paramiko.HostKeys:
    """The keys of the known_hosts file ``path``, parsed once per content and shared by every
    transport of the run (each parsing the whole file would cost a fleet of N hosts N times
    N key parses). A missing file is empty, unless ``must_exist`` (then OSError)."""
    path = os.path.expanduser(path)
    try:
        st = os.stat(path)
    except OSError:
        if must_exist:
            raise
        return paramiko.HostKeys()
    stamp = (st.st_mtime_ns, st.st_size)
    with _KNOWN_HOSTS_LOCK:
        hit = _KNOWN_HOSTS.get(path)
        if hit is None or hit[0] != stamp:
            hit = _KNOWN_HOSTS[path] = (stamp, paramiko.HostKeys(path))
    return hit[1]


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown keys, or (explicitly asked) accept and record them."""

    def __init__(self, accept_new: bool, known_hosts: str) -> None:
        self.accept_new = accept_new
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        fp = key.fingerprint if hasattr(key, "fingerprint") else key.get_name()
        if not self.accept_new:
            raise ConnectError(
                f"unknown host key for {hostname} ({fp}): verify it, then add it to {self.known_hosts} "
                f"or rerun with --accept-new-host-keys",
                hostname,
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        with _KNOWN_HOSTS_LOCK:
            path = os.path.expanduser(self.known_hosts)
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            with open(path, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


@dataclass(frozen=True)
class Target:
    """A parsed ``[user@]host[:port]``: what the user typed, before ssh config applies."""

    user: str | None
    host: str
    port: int | None


def parse_target(target: str, what: str = "target") -> Target:
    """Split ``[user@]host[:port]`` (``[v6addr]:port`` too; a bare IPv6 address has no port);
    InputError naming what is wrong."""

    def bad(why: str) -> InputError:
        return InputError(f"bad {what} {target!r}: {why} (expected [user@]host[:port])")

    spec, user = target, None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
        if not user:
            raise bad("empty user before '@'")
    port_text = None
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise bad("an IPv6 address with a port is written [addr]:port")
        port_text = rest[1:] if rest else None
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
    else:
        host = spec
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise bad("no host name" if not host else f"{host!r} is not a host name or address")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad(f"port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    return Target(user, host, port)


def load_ssh_config(path: str | None) -> paramiko.SSHConfig:
    """``path`` (``--ssh-config``), else ~/.ssh/config then /etc/ssh/ssh_config (the first
    value found wins, as in OpenSSH). InputError when an explicit file cannot be read."""
    cfg = paramiko.SSHConfig()
    if path:
        try:
            with open(os.path.expanduser(path)) as f:
                cfg.parse(f)
        except OSError as e:
            raise InputError(f"cannot read --ssh-config {path}: {e.strerror}") from None
        return cfg
    for p in (os.path.expanduser(USER_SSH_CONFIG), SYSTEM_SSH_CONFIG):
        try:
            with open(p) as f:
                cfg.parse(f)
        except OSError:
            pass
    return cfg


@dataclass
class _Hop:
    """One SSH server to log in to, with ssh config applied."""

    host: str
    port: int
    user: str
    keys: list[str]
    proxy_command: str | None
    jump: str | None

    @classmethod
    def resolve(
        cls, t: Target, cfg: paramiko.SSHConfig, identities: list[str], login_user: str | None
    ) -> _Hop:
        c = cfg.lookup(t.host)
        keys = [os.path.expanduser(i) for i in identities]
        keys += [os.path.expanduser(k) for k in c.get("identityfile", [])]
        return cls(
            host=c.get("hostname", t.host),
            port=t.port or int(c.get("port", 22)),
            user=t.user or login_user or c.get("user") or getpass.getuser(),
            keys=keys,
            proxy_command=c.get("proxycommand"),
            jump=c.get("proxyjump"),
        )

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class SSHTransport(Transport):
    """Commands over one SSH connection per target."""

    def __init__(self, target: str, opts: SSHOptions, login_user: str | None = None) -> None:
        super().__init__(opts.become_password)
        self.opts = opts
        self.name = target
        self._cfg = load_ssh_config(opts.ssh_config)
        self.hop = _Hop.resolve(parse_target(target), self._cfg, opts.identities, login_user)
        self.user = self.hop.user
        self.client = self._new_client()
        self._gateways: list[paramiko.SSHClient] = []

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(
            _HostKeyPolicy(self.opts.accept_new_host_keys, self.opts.known_hosts)
        )
        return client

    def _trust(self, client: paramiko.SSHClient, hop: _Hop) -> None:
        """Give ``client`` the known keys of ``hop`` only, from the shared parsed files: the
        user's known_hosts first (as Paramiko's system keys), then ``--known-hosts``."""
        name = hop.host if hop.port == 22 else f"[{hop.host}]:{hop.port}"
        try:
            found = known_hosts(USER_KNOWN_HOSTS).lookup(name)
        except (OSError, paramiko.SSHException):
            found = None
        if found is None and os.path.exists(os.path.expanduser(self.opts.known_hosts)):
            found = known_hosts(self.opts.known_hosts, must_exist=True).lookup(name)
        for keytype, key in (found or {}).items():
            client.get_host_keys().add(name, keytype, key)

    def _connect(self, client: paramiko.SSHClient, hop: _Hop, sock) -> None:
        self._trust(client, hop)
        client.connect(
            hop.host,
            port=hop.port,
            username=hop.user,
            password=self.opts.password,
            key_filename=hop.keys or None,
            look_for_keys=True,
            allow_agent=True,
            timeout=self.opts.connect_timeout,
            sock=sock,
        )
        _watch_liveness(client.get_transport())

    def _sock(self):
        """What the target's connection runs over: a channel through the jump host(s)
        (``--jump``, else the ssh config's ProxyJump), its ProxyCommand, or a plain TCP socket."""
        jump = self.opts.jump or self.hop.jump
        if not jump:
            return paramiko.ProxyCommand(self.hop.proxy_command) if self.hop.proxy_command else None
        sock = None
        hops = [
            _Hop.resolve(parse_target(j, "--jump"), self._cfg, self.opts.identities, None)
            for j in jump.split(",")
        ]
        for i, hop in enumerate(hops):
            gw = self._new_client()
            self._gateways.append(gw)
            self._connect(gw, hop, sock)
            nxt = hops[i + 1] if i + 1 < len(hops) else self.hop
            sock = gw.get_transport().open_channel("direct-tcpip", (nxt.host, nxt.port), ("", 0))
        return sock

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    @property
    def is_connected(self) -> bool:
        t = self.client.get_transport()
        return t is not None and t.is_active()

    def open(self) -> None:
        """Connect and authenticate; every failure becomes one :class:`ConnectError` line."""
        where = self.hop.where
        try:
            self._connect(self.client, self.hop, self._sock())
        except ConnectError:
            raise
        except paramiko.BadHostKeyException as e:
            raise ConnectError(
                f"host key of {e.hostname} CHANGED (got {e.key.get_name()}): if that is expected, "
                f"remove its old line from {self.opts.known_hosts}",
                self.name,
            ) from None
        except paramiko.AuthenticationException:
            raise ConnectError(
                f"SSH authentication refused for {where}: pass -i KEY, load the key into "
                f"ssh-agent, or use --ask-pass",
                self.name,
            ) from None
        except (socket.timeout, TimeoutError):
            raise ConnectError(
                f"cannot reach {where}: timed out after {self.opts.connect_timeout:.0f} s; "
                f"check the address and firewall",
                self.name,
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
                reason = "connection refused"
            raise ConnectError(
                f"cannot reach {where}: {reason}; check the address and that sshd runs", self.name
            ) from None

    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> Result:
        if not self.is_connected:
            self.open()
        try:
            chan = self.client.get_transport().open_session()
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out = _read_all(chan.recv)
            err = _read_all(chan.recv_stderr)
            rc = chan.recv_exit_status()
            chan.close()
        except (socket.timeout, TimeoutError):
            return Result(command, 124, "", f"timed out after {timeout:.0f} s")
        except (paramiko.SSHException, OSError, EOFError) as e:
            why = str(e) or type(e).__name__  # an EOFError says nothing by itself
            raise ConnectError(f"connection to {self.name} lost: {why}", self.name) from None
        if rc == -1 and not self.is_connected:  # the channel closed with the connection
            raise ConnectError(
                f"connection to {self.name} lost while running a command (no answer for "
                f"{ALIVE_TIMEOUT} s): it may have finished there; rerun to converge",
                self.name,
            )
        return Result(command, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def upload(self, data: bytes, name: str) -> str:
        """SFTP into a private temp file; through commands when the server has no SFTP."""
        if not self.is_connected:
            self.open()
        path = f"{STAGE_PREFIX}{name}-{secrets.token_hex(6)}"
        t0 = time.monotonic()
        try:
            sftp = self.client.open_sftp()
            try:
                with sftp.open(path, "wb") as f:
                    f.set_pipelined(True)
                    f.write(data)
                sftp.chmod(path, 0o600)
            finally:
                sftp.close()
            self._record(f"sftp put {path} ({len(data)} bytes, mode 600)", Result("sftp", 0, "", ""), t0)
            return path
        except (paramiko.SSHException, OSError, EOFError) as e:
            return self._upload_in_chunks(data, name, f" (SFTP failed: {e})")

    def close(self) -> None:
        self.client.close()
        for gw in reversed(self._gateways):
            gw.close()


def _watch_liveness(transport: paramiko.Transport | None) -> None:
    """Keepalives on the connection and, on a TCP socket, a bound on how long sent data may
    stay unacknowledged (TCP_USER_TIMEOUT), so a silent peer ends the connection."""
    if transport is None:
        return
    transport.set_keepalive(ALIVE_INTERVAL)
    sock = transport.sock
    if isinstance(sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, ALIVE_TIMEOUT * 1000)
        except OSError:
            pass  # not TCP (a unix socket from a ProxyCommand): the keepalives still run


def _read_all(recv) -> bytearray:
    """Read one stream of a channel (`chan.recv` or `chan.recv_stderr`) until it ends."""
    data = bytearray()
    while True:
        chunk = recv(65536)
        if not chunk:
            return data
        data += chunk
