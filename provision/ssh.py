"""SSH transport: Fabric's ``Connection`` for setup (ssh config, agent, keys, jump host),
a plain Paramiko session per command for speed. Unknown host keys are refused unless the
caller explicitly accepts new ones (which then records them in the known_hosts file).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field

import paramiko
from fabric import Config, Connection

from provision.errors import ConnectError
from provision.transport import Result, Transport

_KNOWN_HOSTS_LOCK = threading.Lock()


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


def parse_target(target: str, default_user: str | None = None) -> tuple[str | None, str, int | None]:
    """Split ``[user@]host[:port]`` (``[v6addr]:port`` too) into its parts."""
    user = default_user
    if "@" in target:
        user, target = target.rsplit("@", 1)
    port = None
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif target.count(":") == 1:
        host, p = target.split(":")
        port = int(p)
    else:
        host = target
    if not host:
        raise ValueError(f"bad target {target!r}: expected [user@]host[:port]")
    return user, host, port


class SSHTransport(Transport):
    """Commands over one SSH connection per target."""

    def __init__(self, target: str, opts: SSHOptions, login_user: str | None = None) -> None:
        super().__init__(opts.become_password)
        self.opts = opts
        user, host, port = parse_target(target, login_user)
        self.name = target
        cfg = Config(runtime_ssh_path=opts.ssh_config) if opts.ssh_config else Config()
        kwargs: dict = {"look_for_keys": True, "allow_agent": True}
        if opts.identities:
            kwargs["key_filename"] = [os.path.expanduser(i) for i in opts.identities]
        if opts.password is not None:
            kwargs["password"] = opts.password
        gateway = None
        if opts.jump:
            ju, jh, jp = parse_target(opts.jump)
            gateway = Connection(
                jh,
                user=ju,
                port=jp,
                config=cfg,
                connect_kwargs=dict(kwargs),
                connect_timeout=max(1, round(opts.connect_timeout)),
            )
            self._harden(gateway.client)
        self.conn = Connection(
            host,
            user=user,
            port=port,
            config=cfg,
            gateway=gateway,
            connect_kwargs=kwargs,
            connect_timeout=max(1, round(opts.connect_timeout)),
        )
        self.user = self.conn.user
        self._harden(self.conn.client)
        self._gateway = gateway

    def _harden(self, client: paramiko.SSHClient) -> None:
        try:
            client.load_system_host_keys()
        except (OSError, paramiko.SSHException):
            pass
        path = os.path.expanduser(self.opts.known_hosts)
        if os.path.exists(path):
            client.load_host_keys(path)
        client.set_missing_host_key_policy(
            _HostKeyPolicy(self.opts.accept_new_host_keys, self.opts.known_hosts)
        )

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    def open(self) -> None:
        """Connect and authenticate; every failure becomes one :class:`ConnectError` line."""
        where = f"{self.conn.user}@{self.conn.host}:{self.conn.port}"
        try:
            self.conn.open()
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
        if not self.conn.is_connected:
            self.open()
        try:
            chan = self.conn.transport.open_session()
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
            raise ConnectError(f"connection to {self.name} lost: {e}", self.name) from None
        return Result(command, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def close(self) -> None:
        self.conn.close()
        if self._gateway is not None:
            self._gateway.close()


def _read_all(recv) -> bytearray:
    """Read one stream of a channel (`chan.recv` or `chan.recv_stderr`) until it ends."""
    data = bytearray()
    while True:
        chunk = recv(65536)
        if not chunk:
            return data
        data += chunk
