"""One interface to run commands and write files on a target: locally or over SSH.

Steps only ever see a :class:`Transport`; they never know where they run. Privilege
escalation (sudo, with a password on stdin when one is given) and atomic file writes
(temp file + rename, with owner and mode) live here, once, for both transports.
"""

from __future__ import annotations

import abc
import base64
import os
import secrets
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

from provision.errors import StepError, SudoError

DEFAULT_TIMEOUT = 600.0
STAGE_PREFIX = "/tmp/.berth-"  # upload(data, NAME) stages into STAGE_PREFIX + NAME + "-" + random
CHUNK = 48 * 1024  # bytes per command when a file is staged through commands (no SFTP)
# Commands run with sbin on PATH: non-root logins on Debian lack it, and facts need modprobe/sysctl.
PATH_PREFIX = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH; "


@dataclass
class Result:
    """The outcome of one command: what ran, its exit code and its output."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def brief(self) -> str:
        """The last meaningful line of output, for one-line error messages."""
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.returncode}"


class Transport(abc.ABC):
    """Run shell commands (optionally as root) and move files on one target."""

    name: str = "?"
    user: str = "root"

    def __init__(self, become_password: str | None = None) -> None:
        self.become_password = become_password
        # called after every command with (what it did, its Result, seconds): --log-dir
        self.recorder: Callable[[str, Result, float], None] | None = None

    # -- what a concrete transport implements ---------------------------------------------
    @abc.abstractmethod
    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> Result:
        """Run ``command`` with ``sh -c`` semantics on the target and collect its output."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @property
    @abc.abstractmethod
    def is_root(self) -> bool:
        """True when commands already run as uid 0 (no sudo needed)."""

    # -- the interface steps use ----------------------------------------------------------
    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT, shown: str | None = None) -> Result:
        """Run ``command`` as the login user (``shown``: what the log says instead of it)."""
        t0 = time.monotonic()
        res = self._exec(PATH_PREFIX + command, None, timeout)
        res.command = command
        self._record(shown or command, res, t0)
        return res

    def sudo(self, command: str, timeout: float = DEFAULT_TIMEOUT, shown: str | None = None) -> Result:
        """Run ``command`` as root: directly when already root, else through sudo (``shown``:
        what the log says instead of the command)."""
        t0 = time.monotonic()
        try:
            res = self._sudo(command, timeout)
        except SudoError as e:
            if e.result is not None:
                self._record("(sudo) " + (shown or command), e.result, t0)
            raise
        self._record(shown or command, res, t0)
        return res

    def _record(self, what: str, res: Result, t0: float) -> None:
        if self.recorder is not None:
            self.recorder(what, res, time.monotonic() - t0)

    def _sudo(self, command: str, timeout: float) -> Result:
        if self.is_root:
            res = self._exec(PATH_PREFIX + command, None, timeout)
            res.command = command
            return res
        inner = shlex.quote(PATH_PREFIX + "exec </dev/null; " + command)
        if self.become_password is None:
            res = self._exec(f"sudo -n -- sh -c {inner}", None, timeout)
        else:
            stdin = (self.become_password + "\n").encode()
            res = self._exec(f"sudo -k -S -p '' -- sh -c {inner}", stdin, timeout)
        if res.returncode != 0:
            self._raise_for_sudo(res)
        res.command = command
        return res

    def put(
        self,
        path: str,
        content: bytes,
        mode: int = 0o644,
        owner: str = "root",
        group: str = "root",
        backup: bool = False,
    ) -> Result:
        """Write ``content`` to ``path`` atomically (temp file in the same dir + rename) as root.

        With ``backup`` an existing file is first copied to ``PATH.bak`` (the previous state)
        and, once ever, to ``PATH.berth-orig`` (the state before provision touched it).
        """
        extra = ", backup" if backup else ""
        shown = f"write {path} ({len(content)} bytes, mode {mode:o}, {owner}:{group}{extra})"
        return self.sudo(write_file_script(path, content, mode, owner, group, backup), shown=shown)

    def upload(self, data: bytes, name: str) -> str:
        """Put ``data`` (too large for :meth:`put`'s inline command, e.g. the engine bundle)
        into a fresh private temp file of the login user (mode 0600); return its path. Root
        commands then move it into place. This version sends it in base64 chunks through
        commands; transports with a file channel override it."""
        return self._upload_in_chunks(data, name, "")

    def _upload_in_chunks(self, data: bytes, name: str, why: str) -> str:
        path = f"{STAGE_PREFIX}{name}-{secrets.token_hex(6)}"
        q = shlex.quote(path)
        res = self.run(f"umask 077; : > {q}")
        if not res.ok:
            raise StepError(f"cannot stage {name} on {self.name}{why}: {res.brief()}", self.name, res)
        for i in range(0, len(data), CHUNK):
            chunk = base64.b64encode(data[i : i + CHUNK]).decode()
            shown = f"append {len(chunk)} base64 characters to {path}"
            res = self.run(f"printf %s '{chunk}' | base64 -d >> {q}", shown=shown)
            if not res.ok:
                raise StepError(f"cannot stage {name} on {self.name}: {res.brief()}", self.name, res)
        return path

    def _raise_for_sudo(self, res: Result) -> None:
        err = res.stderr
        who = self.name if "@" in self.name else f"{self.user}@{self.name}"
        if "incorrect password" in err or "Sorry, try again" in err:
            raise SudoError(
                f"wrong sudo password for {who}: check --ask-become-pass / --sudo-password-file",
                self.name,
                res,
            )
        if "password is required" in err or "no password was provided" in err:
            raise SudoError(
                f"sudo on {who} needs a password: pass --ask-become-pass or --sudo-password-file",
                self.name,
                res,
            )
        if "not in the sudoers" in err or "is not allowed to" in err or "may not run sudo" in err:
            raise SudoError(f"{who} may not use sudo: log in as root or grant it sudo rights", self.name, res)
        if "sudo: command not found" in err or ("not found" in err and "sudo" in err.split(":")[0]):
            raise SudoError(f"sudo is not installed on {self.name}: log in as root", self.name, res)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_file_script(path: str, content: bytes, mode: int, owner: str, group: str, backup: bool) -> str:
    """The POSIX sh that writes a file atomically; the content travels base64-encoded inline."""
    q = shlex.quote(path)
    d = shlex.quote(os.path.dirname(path) or "/")
    tmpl = shlex.quote(os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".berth-XXXXXX"))
    data = base64.b64encode(content).decode()
    parts = [
        "set -e",
        f"mkdir -p {d}",
        f"t=$(mktemp {tmpl})",
        "trap 'rm -f \"$t\"' EXIT",
        f"printf %s '{data}' | base64 -d > \"$t\"",
        f'chown {shlex.quote(owner)}:{shlex.quote(group)} "$t"',
        f'chmod {mode:o} "$t"',
    ]
    if backup:
        parts.append(
            f"if [ -f {q} ]; then [ -e {q}.berth-orig ] || cp -p {q} {q}.berth-orig; cp -p {q} {q}.bak; fi"
        )
    parts += [
        f'mv -f "$t" {q}',
        "trap - EXIT",
        f"if command -v restorecon >/dev/null 2>&1; then restorecon {q} 2>/dev/null || true; fi",
    ]
    return "\n".join(parts)


class LocalTransport(Transport):
    """Runs on this machine through ``sh -c`` (sudo when not root)."""

    def __init__(self, become_password: str | None = None) -> None:
        super().__init__(become_password)
        self.name = "localhost"
        import getpass

        self.user = getpass.getuser()

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    def _exec(self, command: str, stdin: bytes | None, timeout: float) -> Result:
        try:
            p = subprocess.run(
                ["sh", "-c", command],
                input=stdin or b"",
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return Result(command, 124, "", f"timed out after {timeout:.0f} s")
        return Result(
            command, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        )

    def upload(self, data: bytes, name: str) -> str:
        where, prefix = os.path.split(f"{STAGE_PREFIX}{name}-")
        fd, path = tempfile.mkstemp(prefix=prefix, dir=where)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def close(self) -> None:
        pass
