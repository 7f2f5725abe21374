"""``--engine docker``: the guide's own path instead of berth's engine.

EL: remove the old distro docker packages, install yum-utils device-mapper-persistent-data
lvm2, then docker-ce (optionally pinned to a version `yum list docker-ce --showduplicates`
shows) from the Docker CE repo the repos step wrote; Debian/Ubuntu: the distro's docker.io.
/etc/docker/daemon.json is written by the daemon.json step; here: enable --now, restart on a
changed daemon.json (rolled back if dockerd then fails), and the same offline proof."""

from __future__ import annotations

import re
import shlex

from provision.distros import Platform
from provision.engine_kind import DEBIAN_DOCKER, DOCKER, EL_DOCKER, EL_PREREQS, OLD_DOCKER
from provision.errors import InputError
from provision.facts.system import systemd_running
from provision.options import Options
from provision.steps import pending
from provision.steps.base import Command, StepPlan
from provision.steps.daemon import ConfigChange
from provision.steps.engine import merged_config
from provision.steps.probe import make_check, make_quick_check
from provision.steps.record import state_change
from provision.steps.repos import APT_ENV, plan_packages
from provision.steps.service import Control, EngineStart


def _version_ok(v: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z.:~+_-]+", v):
        raise InputError(
            f"bad --docker-version {v!r}: use a version as `yum list docker-ce --showduplicates` shows"
        )
    return v


def plan_docker(
    facts: dict, plat: Platform, opts: Options, daemon_json: ConfigChange, refreshed: bool
) -> list[StepPlan]:
    """Docker CE (EL) or docker.io (Debian/Ubuntu), enabled, running and verified; a changed
    ``daemon_json`` restarts dockerd (rolled back when it then fails)."""
    have = facts.get("packages", set())
    eng = facts.get("engine") or {}
    steps: list[StepPlan] = []
    pinned = _version_ok(opts.docker_version) if opts.docker_version else None
    installed_version = eng.get("docker_pkg", "")
    if plat.family == "el":
        old = StepPlan("old docker packages")
        gone = [p for p in OLD_DOCKER if p in have]
        if gone:
            old.actions.append(
                Command("yum -y -q remove " + " ".join(gone), "remove the distro's old docker")
            )
        prereq = plan_packages(facts, plat, EL_PREREQS, refreshed=True)
        prereq.name = "docker prerequisites"
        ce = StepPlan("docker-ce")
        want_pin = pinned and pinned not in installed_version
        if "docker-ce" not in have or want_pin:
            names = " ".join(f"{p}-{pinned}" if pinned and p != "containerd.io" else p for p in EL_DOCKER)
            if pinned:
                ce.actions.append(
                    Command(
                        f"yum list docker-ce --showduplicates -q | grep -q -- {shlex.quote(pinned)} || "
                        f"{{ echo 'docker-ce {pinned} is not in the repo: pick one from "
                        f"`yum list docker-ce --showduplicates`' >&2; exit 1; }}",
                        "check the pinned version exists",
                    )
                )
            ce.actions.append(
                Command(f"yum -y -q --releasever={plat.major} install {names}", "install Docker CE")
            )
        else:
            ce.notes.append(f"docker-ce {installed_version} already installed")
        steps += [old, prereq, ce]
    else:
        pins = {"docker.io": pinned} if pinned else None
        step = plan_packages(facts, plat, DEBIAN_DOCKER, refreshed, apt_pins=pins)
        step.name = "docker.io"
        if pinned and pinned != installed_version and "docker.io" in have:
            step.actions.append(
                Command(f"{APT_ENV} apt-get -q -y install docker.io={shlex.quote(pinned)}", "pin docker.io")
            )
        steps.append(step)

    installing = [p for p in EL_DOCKER + DEBIAN_DOCKER if p not in have]
    installing = [p for p in installing if (p in EL_DOCKER) == (plat.family == "el")]
    record = state_change(facts, opts, installing)
    if record:
        steps[-1].actions.insert(0, record)
    config = merged_config(facts, opts)
    sock = DOCKER.socket(config)
    systemd = systemd_running(facts)
    ctl = Control.of(DOCKER, systemd, sock)
    svc = StepPlan("docker service")
    running = eng.get("ActiveState") == "active" if systemd else bool(eng.get("direct_pid"))
    if systemd and eng.get("UnitFileState") != "enabled":
        svc.actions.append(
            Command(f"systemctl enable {DOCKER.service} 2>&1", f"start {DOCKER.service} at boot")
        )
    if not running:
        svc.actions.append(EngineStart(ctl, False, "not running"))
    elif daemon_json.changed:
        svc.actions.append(EngineStart(ctl, True, "daemon.json changed", True, daemon_json.previous))
    elif pending.reason(eng):
        svc.actions.append(EngineStart(ctl, True, pending.reason(eng)))
    if not systemd:
        svc.notes.append("systemd is not PID 1 here: dockerd runs directly (pid file /run/berthd.pid)")
    steps.append(svc)
    verify = StepPlan("engine verify")
    verify.check = make_check(DOCKER, sock, opts.group, config.get("registry-mirrors") or [])
    verify.quick = make_quick_check(DOCKER, sock, opts.group, facts, verify.check)
    steps.append(verify)
    return steps
