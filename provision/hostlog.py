"""``--log-dir``: one plain-text log per host with every command run there (as the user would
type it; file writes and uploads summarised, never their content or a password), its exit
status, time and output, each step's outcome and the diffs of what changed."""

from __future__ import annotations

import os
import re
import threading
import time

from provision.errors import InputError
from provision.transport import Result


def prepare(log_dir: str) -> str:
    """Create ``log_dir`` if needed; InputError when it cannot be written (before any host)."""
    try:
        os.makedirs(log_dir, exist_ok=True)
        probe = os.path.join(log_dir, f".provision-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"--log-dir {log_dir}: {e.strerror}") from None
    return log_dir


def log_path(log_dir: str, target: str) -> str:
    """The log file of ``target`` (characters a file name cannot hold become ``_``)."""
    return os.path.join(log_dir, re.sub(r"[^A-Za-z0-9@.:_\[\]-]", "_", target) + ".log")


class HostLog:
    """An append-only log of one host's run (the file is replaced at the start of the run)."""

    def __init__(self, log_dir: str, target: str, command: str) -> None:
        self.path = log_path(log_dir, target)
        self.lock = threading.Lock()
        self.f = open(self.path, "w", encoding="utf-8")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.write(f"# provision {command} {target}  {stamp}\n")

    def write(self, text: str) -> None:
        with self.lock:
            self.f.write(text if text.endswith("\n") else text + "\n")
            self.f.flush()

    def command(self, what: str, res: Result, seconds: float) -> None:
        """One command: what ran, exit status, time, then its stdout and stderr."""
        out = [f"$ {what}", f"  [exit {res.returncode}, {seconds:.2f} s]"]
        out += [f"  | {ln}" for ln in res.stdout.splitlines()]
        out += [f"  ! {ln}" for ln in res.stderr.splitlines()]
        self.write("\n".join(out))

    def step(self, name: str, status: str, seconds: float, diffs: list[str], error: str | None) -> None:
        """A step's outcome and the diffs of its actions."""
        self.write(f"== step {name}: {status} ({seconds:.2f} s)" + (f": {error}" if error else ""))
        for d in diffs:
            if d:
                self.write(d)

    def close(self, status: str, error: str | None) -> None:
        self.write(f"# result: {status}" + (f": {error}" if error else ""))
        with self.lock:
            self.f.close()
