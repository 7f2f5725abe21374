"""Facts about the container engine on a target: installed bundle, wrappers, unit, service
state and socket. Gathered in the same round trip as the system facts."""

from __future__ import annotations

import json
import shlex

from provision.bundle import BIN_DIR, LIB_DIR
from provision.engine_kind import BERTH, PIDFILE, STATE_FILE, EngineKind, pending_marker, proof_record
from provision.facts.base import Fact
from provision.facts.system import file_command, parse_files, parse_words, read_file

ENGINE_FILES = [BERTH.unit, f"{BIN_DIR}/berth", f"{BIN_DIR}/berthd", STATE_FILE]


def pending_fact_command(service: str) -> str:
    """sh printing ``pending=REASONS`` (empty when no restart is pending; provision/steps/pending.py)."""
    m = shlex.quote(pending_marker(service))
    return f"v=; [ -r {m} ] && v=$(tr '\\n' ' ' < {m}); echo \"pending=$v\""


def parse_service(lines: list[str]) -> dict:
    """``systemctl show`` KEY=VALUE lines plus ``pid``/``sock``/``marker`` extras."""
    out: dict = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    if "marker" in out:
        try:
            out["marker"] = json.loads(out["marker"])
        except ValueError:
            out["marker"] = None
    return out


def engine_facts(kind: EngineKind, sockets: list[str]) -> list[Fact]:
    """Facts the engine steps decide from (both engines; cheap when nothing is installed)."""
    svc = kind.service
    q = shlex.quote
    proof = proof_record(svc)
    sock_cmd = "; ".join(
        f"if [ -S {q(s)} ]; then echo \"{s} $(stat -c '%U %G %a' {q(s)})\"; fi" for s in sockets
    )
    # files read only where they exist: a host without the engine spawns no process here
    state = (
        f"if [ -d /run/systemd/system ]; then systemctl show {svc} -p ActiveState -p SubState "
        f"-p MainPID -p UnitFileState -p ActiveEnterTimestamp -p LoadState; fi; "
        f"{pending_fact_command(svc)}; "
        f'v=; [ -L {LIB_DIR}/current ] && v=$(readlink {LIB_DIR}/current); echo "current=$v"; '
        f"v=; [ -r {LIB_DIR}/current/BERTH_INSTALLED ] && v=$(cat {LIB_DIR}/current/BERTH_INSTALLED); "
        'echo "marker=$v"; '
        f"p=; [ -r {PIDFILE} ] && read -r p < {PIDFILE}; "
        f'if [ -n "$p" ] && [ -d /proc/$p ]; then echo "direct_pid=$p"; fi'
    )
    if not kind.installs_bundle:
        state += (
            "; echo \"docker_pkg=$( (rpm -q --qf '%{VERSION}-%{RELEASE}' docker-ce || "
            "dpkg-query -W -f='${Version}' docker.io) 2>/dev/null)\""
        )
    return [
        Fact("engine", state, parse_service, {}),
        Fact("engine_sockets", sock_cmd or "true", parse_words, {}),
        Fact("engine_files", file_command(ENGINE_FILES), parse_files, {}),
        # the engine process the last full verification passed on (steps/probe.py)
        Fact("engine_proof", f"[ -r {proof} ] && {read_file(proof)}", parse_service, {}),
    ]


def socket_paths(kind: EngineKind, wanted: dict) -> list[str]:
    """The sockets whose owner and mode the facts report (the configured one and the default)."""
    return list(dict.fromkeys([kind.socket(wanted), kind.default_socket]))
