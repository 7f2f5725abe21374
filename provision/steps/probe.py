"""Proof that an engine works, offline: its API answers, the storage driver is overlay (or vfs,
reported with the engine's own warning, where the data root cannot hold overlay), the
registry mirrors in effect are those written, the socket is root:GROUP 0660, and a container
runs and exits 0. The container's image (``berth-probe``) is built on the target from its
own binaries (sh, echo, true, sleep, cat and the libraries they load): no registry needed.

A full proof that passes leaves a record of the engine process it passed on (under /run). A
run that changes nothing on a host whose engine is still that process proves it cheaply: the
API answers and the socket is as wanted. Anything that could change what the full proof
found (a new engine build, daemon.json, a restart, a reboot, any step's change) means a new
process or a changed step, and so the full proof again."""

from __future__ import annotations

import json
import shlex
from typing import Callable

from provision.engine_kind import PENDING_DIR, EngineKind, identity_command, proof_record
from provision.errors import StepError
from provision.render import render
from provision.transport import Transport

PROBE_IMAGE = "berth-probe:latest"


def _json(res, what: str, t: Transport) -> dict:
    try:
        data = json.loads(res.stdout)
    except ValueError:
        raise StepError(f"{what} did not answer with JSON: {res.brief()}", t.name, res) from None
    if not isinstance(data, dict):
        raise StepError(f"{what} answered {res.stdout[:80]!r}", t.name, res)
    return data


def make_check(
    kind: EngineKind, sock: str, group: str, mirrors: list[str]
) -> Callable[[Transport], list[str]]:
    """The verification run after the engine steps (also on a rerun that changed nothing)."""
    client = kind.client
    cli = kind.cli(sock)
    inspect = f"{cli} {kind.image_inspect} {PROBE_IMAGE}"
    info_cmd = f"{cli} info {kind.json_format}"

    def check(t: Transport) -> list[str]:
        notes = []
        res = t.sudo(info_cmd)
        if not res.ok:
            raise StepError(f"`{client} info` failed: {res.brief()}", t.name, res)
        info = _json(res, f"{client} info", t)
        driver = info.get("Driver", "")
        if driver == "vfs":
            why = [w for w in info.get("Warnings") or [] if "vfs" in w]
            notes.append("WARNING: " + (why[0] if why else "storage driver vfs (a full copy per container)"))
        elif not driver.startswith("overlay"):
            raise StepError(
                f"storage driver is {driver!r}, not overlay: check the data root filesystem", t.name
            )
        got = [m.rstrip("/") for m in (info.get("RegistryConfig") or {}).get("Mirrors") or []]
        want = [m.rstrip("/") for m in mirrors]
        if got != want:
            raise StepError(f"registry mirrors in effect are {got}, not the {want} written", t.name)
        res = t.sudo(f"stat -c '%U:%G %a' {shlex.quote(sock)}")
        if res.stdout.strip() != f"root:{group} 660":
            raise StepError(
                f"socket {sock} is {res.stdout.strip() or 'missing'}, not root:{group} 660", t.name, res
            )
        if not t.sudo(f"{inspect} >/dev/null 2>&1").ok:
            res = t.sudo(render("probe-image.sh.j2", {"cli": cli, "image": PROBE_IMAGE}).decode())
            if not res.ok:
                raise StepError(f"building the probe image failed: {res.brief()}", t.name, res)
            notes.append(f"imported {PROBE_IMAGE} (built from the host's own binaries)")
        # detached run, wait for its exit code, read its log, remove it: the proof depends on
        # the container and its log, not on a live attach stream
        res = t.sudo(
            f"n=berth-probe-$$; {cli} run -d --name $n {PROBE_IMAGE} sh -c 'echo probe-ok' >/dev/null "
            f"</dev/null || exit 125; code=$({cli} wait $n); out=$({cli} logs $n 2>&1); "
            f'{cli} rm -f $n >/dev/null 2>&1; echo "$out"; exit "${{code:-125}}"',
            timeout=120,
        )
        if not res.ok or res.stdout.strip() != "probe-ok":
            why = res.brief() if not res.ok else f"it printed {res.stdout.strip()!r}, not 'probe-ok'"
            raise StepError(f"a test container did not run and exit 0: {why}", t.name, res)
        shown = ", ".join(want) or "none"
        notes.append(f"{driver}; mirrors {shown}; socket root:{group} 0660; container ran and exited 0")
        # best effort: without the record the next run proves the engine in full again
        record = proof_record(kind.service)
        t.sudo(f"mkdir -p {PENDING_DIR} && {{ {identity_command(kind.service)}; }} > {record}")
        return notes

    return check


def identity(eng: dict) -> tuple[str, str, str] | None:
    """Which engine process runs, from the engine facts (or a proof record): systemd's main
    PID and its start time, or the direct-mode daemon's pid; None when none runs."""
    main = "" if eng.get("MainPID") in (None, "", "0") else eng["MainPID"]
    direct = eng.get("direct_pid") or ""
    if not main and not direct:
        return None
    return main, eng.get("ActiveEnterTimestamp") or "", direct


def make_quick_check(
    kind: EngineKind, sock: str, group: str, facts: dict, full: Callable[[Transport], list[str]]
) -> Callable[[Transport], list[str]] | None:
    """The cheap proof for a run that changes nothing (see the module's docstring), or None
    when the running engine is not the one a full proof passed on, or its socket is not as
    wanted. An API that does not answer gets the full proof, which says what is wrong."""
    now = identity(facts.get("engine") or {})
    if now is None or now != identity(facts.get("engine_proof") or {}):
        return None
    if (facts.get("engine_sockets") or {}).get(sock) != f"root {group} 660":
        return None
    pid = now[0] or now[2]

    def check(t: Transport) -> list[str]:
        if not t.sudo(f"{kind.cli(sock)} version >/dev/null 2>&1").ok:
            return full(t)
        return [
            f"API answers on {sock}; socket root:{group} 0660; {kind.service} (PID {pid}) is the "
            "process the last full proof (storage driver, mirrors, a container run) passed on, "
            "and nothing changed since"
        ]

    return check
