"""`provision status`: the engine's version, service state, socket, mirrors and running
containers on each host, asked through the engine the install record names."""

from __future__ import annotations

import json
import shlex

from provision.apply import Job, on_host
from provision.engine_kind import PIDFILE, EngineKind
from provision.facts import gather
from provision.steps.record import read_state, recorded_engine
from provision.transport import Transport


def status_script(kind: EngineKind, sock: str) -> str:
    """sh printing KEY=VALUE lines about the engine (run as root)."""
    q = shlex.quote(sock)
    return (
        f"if systemctl is-active -q {kind.service} 2>/dev/null; then echo active=active; "
        f'elif p=$(cat {PIDFILE} 2>/dev/null) && kill -0 "$p" 2>/dev/null; then echo active=active-direct; '
        "else echo active=inactive; fi; "
        f'echo "enabled=$(systemctl is-enabled {kind.service} 2>/dev/null | head -n 1)"; '
        f"echo \"socket=$(stat -c '%U:%G %a' {q} 2>/dev/null || echo missing)\"; "
        f"echo \"info=$({kind.cli(sock)} info {kind.json_format} 2>/dev/null | tr -d '\\n')\""
    )


def parse_status(out: str) -> dict:
    """Status lines -> {version, active, enabled, socket, mirrors, running}."""
    kv = {}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        kv[k] = v
    try:
        info = json.loads(kv.get("info") or "{}")
    except ValueError:
        info = {}
    return {
        "version": info.get("ServerVersion", "-"),
        "active": kv.get("active", "?"),
        "enabled": kv.get("enabled", "?"),
        "socket": kv.get("socket", "?"),
        "mirrors": (info.get("RegistryConfig") or {}).get("Mirrors") or [],
        "running": info.get("ContainersRunning", "-"),
        "driver": info.get("Driver", "-"),
    }


def _status(t: Transport, job: Job) -> dict:
    facts = gather(t, job.opts)
    config, o = recorded_engine(facts, job.opts, read_state(facts))
    sock = o.kind.socket(config)
    st = parse_status(t.sudo(status_script(o.kind, sock)).stdout)
    st.update(engine=o.engine, socket_path=sock)
    return st


def status_host(target: str, job: Job) -> dict:
    """Engine version, active, socket, mirrors and running containers of one host."""
    st, err = on_host(target, job, lambda t: _status(t, job))
    if err:
        return {"target": target, "error": err}
    return {"target": target, **st, "error": None}
