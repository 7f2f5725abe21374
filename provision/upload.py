"""Moving a large file (the engine bundle) to a target: SFTP over SSH, a plain write locally.

Small files go through ``Transport.put`` (inline in one command); a bundle of hundreds of KB
would exceed the kernel's argument size limit, so it travels as a file into a private temp
path that a root command then moves into place.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import tempfile

from provision.errors import StepError
from provision.transport import LocalTransport, Transport

CHUNK = 48 * 1024


def stage(t: Transport, data: bytes, name: str = "bundle") -> str:
    """Put ``data`` in a fresh temp file on the target (mode 0600); return its path."""
    conn = getattr(t, "conn", None)
    if isinstance(t, LocalTransport):
        fd, path = tempfile.mkstemp(prefix=f".berth-{name}-", dir="/tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path
    path = f"/tmp/.berth-{name}-{secrets.token_hex(6)}"
    if conn is not None and hasattr(conn, "sftp"):
        try:
            sftp = conn.sftp()
            with sftp.open(path, "wb") as f:
                f.set_pipelined(True)
                f.write(data)
            sftp.chmod(path, 0o600)
            return path
        except Exception as e:  # noqa: BLE001 - no SFTP subsystem: fall back to chunks below
            fallback = f"SFTP failed ({e})"
    else:
        fallback = "no SFTP"
    q = shlex.quote(path)
    res = t.run(f"umask 077; : > {q}")
    if not res.ok:
        raise StepError(f"cannot stage {name} on {t.name} ({fallback}): {res.brief()}", t.name, res)
    for i in range(0, len(data), CHUNK):
        chunk = base64.b64encode(data[i : i + CHUNK]).decode()
        res = t.run(f"printf %s '{chunk}' | base64 -d >> {q}")
        if not res.ok:
            raise StepError(f"cannot stage {name} on {t.name}: {res.brief()}", t.name, res)
    return path
