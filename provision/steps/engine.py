"""The berth engine on the target: OS packages, the bundle, wrappers, berthd.service, the
service itself and the proof that it works. Each step plans only what differs from the facts,
so a rerun changes (and restarts) nothing."""

from __future__ import annotations

import functools
import json
import shlex
import zipfile
from dataclasses import dataclass

from provision import bundle as bundlemod
from provision import daemonjson
from provision.distros import Platform
from provision.engine_kind import BERTH, BERTH_PACKAGES
from provision.errors import InputError, StepError
from provision.facts.system import systemd_running
from provision.options import Options
from provision.render import render
from provision.steps import pending
from provision.steps.base import Command, StepPlan, file_state
from provision.steps.daemon import ConfigChange
from provision.steps.probe import make_check, make_quick_check
from provision.steps.record import state_change
from provision.steps.repos import plan_packages
from provision.steps.service import Control, EngineStart
from provision.transport import Transport


@functools.lru_cache(maxsize=4)
def load_bundle(path: str | None) -> bundlemod.Bundle:
    """The bundle to ship: a prebuilt ``--bundle FILE`` or one built from runtime/ (once)."""
    if not path:
        return bundlemod.build()
    try:
        with open(path, "rb") as f:
            data = f.read()
        with zipfile.ZipFile(path) as z:
            version = json.loads(z.read(bundlemod.MARKER))["version"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(
            f"--bundle {path} is not a berth engine bundle ({e}): build one with `provision bundle`"
        ) from None
    import hashlib

    return bundlemod.Bundle(data, version, hashlib.sha256(data).hexdigest())


@dataclass
class InstallBundle:
    """Upload the bundle (SFTP) and install it under /usr/local/lib/berth."""

    bundle: bundlemod.Bundle
    previous: str

    def describe(self) -> str:
        b = self.bundle
        was = f" (replacing {self.previous})" if self.previous else ""
        return f"install engine {b.version} build {b.build_id}{was} into {b.install_dir}"

    def diff(self) -> str:
        return f"$ upload {self.bundle.filename} ({len(self.bundle.data)} bytes) && install it\n"

    def apply(self, t: Transport) -> None:
        staged = t.upload(self.bundle.data, "bundle")
        res = t.sudo(bundlemod.install_script(self.bundle, shlex.quote(staged)))
        if not res.ok:
            t.sudo(f"rm -f {shlex.quote(staged)}")
            raise StepError(f"installing the engine failed: {res.brief()}", t.name, res)


def merged_config(facts: dict, opts: Options) -> dict:
    """daemon.json as it will be after this run (the daemon.json step writes the same merge)."""
    cur = (facts.get("files") or {}).get(opts.daemon_json_path)
    return daemonjson.merged(
        None if cur is None else cur["content"], opts.daemon_json_path, opts.wanted_daemon_json(), opts.kind
    )[1]


def plan_engine_packages(facts: dict, plat: Platform, names: list[str]) -> StepPlan:
    """The OS packages the engine needs, installed only when missing."""
    step = plan_packages(facts, plat, names, refreshed=False)
    step.name = "engine packages"
    return step


def plan_berth(facts: dict, plat: Platform, opts: Options, daemon_json: ConfigChange) -> list[StepPlan]:
    """Every step that installs, starts and proves the berth engine; ``daemon_json`` is what
    the daemon.json step declared (a change restarts berthd, validated first)."""
    b = load_bundle(opts.bundle)
    eng = facts.get("engine") or {}
    efiles = facts.get("engine_files") or {}
    systemd = systemd_running(facts)
    config = merged_config(facts, opts)
    sock = BERTH.socket(config)

    pkgs = plan_engine_packages(facts, plat, BERTH_PACKAGES[plat.family])

    inst = StepPlan("engine bundle")
    if eng.get("marker") != b.marker:
        inst.actions.append(InstallBundle(b, (eng.get("marker") or {}).get("version", "")))
    for prog, path in (("berth", BERTH.client), ("berthd", BERTH.daemon)):
        change = file_state(efiles, path, bundlemod.wrapper(prog), 0o755, backup=False)
        if change:
            inst.actions.append(change)
    upgraded = inst.changes  # the engine itself (bundle, wrappers); the record below is no reason
    record = state_change(facts, opts, [])
    if record:
        inst.actions.append(record)
    if not inst.actions:
        inst.notes.append(f"engine {b.version} build {b.build_id} already installed")

    steps = [pkgs, inst]
    unit_changed = False
    if systemd:
        unit = StepPlan("berthd unit")
        tv = {"berthd": BERTH.daemon, "config_file": opts.daemon_json_path}
        change = file_state(efiles, BERTH.unit, render("berthd.service.j2", tv), 0o644, backup=False)
        if change:
            unit.actions += [change, Command("systemctl daemon-reload", "load the new unit")]
            unit_changed = eng.get("LoadState") == "loaded" and change.old is not None
        steps.append(unit)

    svc = StepPlan("berthd service")
    ctl = Control.of(BERTH, systemd, sock)
    if systemd:
        running = eng.get("ActiveState") == "active"
        if eng.get("UnitFileState") != "enabled":
            svc.actions.append(
                Command(f"systemctl enable {BERTH.service} 2>&1", f"start {BERTH.service} at boot")
            )
    else:
        running = bool(eng.get("direct_pid"))
        pid1 = (facts.get("init") or {}).get("pid1", "?")
        svc.notes.append(
            f"systemd is not PID 1 here (PID 1 is {pid1}): berthd runs directly as a daemon "
            f"(pid file /run/berthd.pid, log /var/log/berthd.log) and will not start at boot"
        )
    reasons = [
        w
        for w, c in (
            ("engine upgraded", upgraded),
            ("unit changed", unit_changed),
            ("daemon.json changed", daemon_json.changed),
        )
        if c
    ]
    owed = pending.reason(eng)
    if owed:
        reasons.append(owed)
    if not running:
        svc.actions.append(EngineStart(ctl, False, "not running"))
    elif reasons:
        svc.actions.append(
            EngineStart(
                ctl,
                True,
                ", ".join(reasons),
                config_changed=daemon_json.changed,
                previous=daemon_json.previous if daemon_json.changed else None,
                validate_cmd=BERTH.validate_cmd(opts.daemon_json_path),
                other_reasons=len(reasons) > 1 or not daemon_json.changed,
            )
        )
    steps.append(svc)

    verify = StepPlan("engine verify")
    verify.check = make_check(BERTH, sock, opts.group, config.get("registry-mirrors") or [])
    verify.quick = make_quick_check(BERTH, sock, opts.group, facts, verify.check)
    steps.append(verify)
    return steps
