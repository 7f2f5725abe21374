"""Kernel modules (modules-load.d + live modprobe) and sysctls (sysctl.d + live values)."""

from __future__ import annotations

import shlex

from provision.errors import StepError
from provision.facts.system import module_state
from provision.options import HOST_ONLY_SYSCTLS, MODULES_FILE, SYSCTL_FILE
from provision.render import render
from provision.steps.base import Command, StepPlan, file_state
from provision.transport import Transport


def plan_modules(facts: dict, tvars: dict) -> StepPlan:
    """Persist the modules for boot and load the missing ones now."""
    step = StepPlan("kernel modules")
    change = file_state(facts.get("files", {}), MODULES_FILE, render("modules-load.conf.j2", tvars))
    if change:
        step.actions.append(change)
    # built-in (or already loaded) modules are left alone: the preflight read the same state
    missing = [m for m in tvars["modules"] if module_state(facts, m) == "loadable"]
    if missing:
        step.actions.append(
            Command(" && ".join(f"modprobe {shlex.quote(m)}" for m in missing), "load the modules now")
        )
    return step


def plan_sysctls(facts: dict, tvars: dict) -> StepPlan:
    """Persist the sysctls and apply the ones whose live value differs; read them back after."""
    live = facts.get("sysctl", {})
    absent = [k for k in tvars["sysctls"] if k in HOST_ONLY_SYSCTLS and k not in live]
    wanted: dict = {k: v for k, v in tvars["sysctls"].items() if k not in absent}
    step = StepPlan("sysctls")
    if absent:  # in the file all the same: systemd-sysctl skips a missing key at boot
        step.notes.append("not in this kernel's namespace (a container host?): " + ", ".join(absent))
    change = file_state(facts.get("files", {}), SYSCTL_FILE, render("sysctl.conf.j2", tvars))
    if change:
        step.actions.append(change)
    differ = [k for k, v in wanted.items() if live.get(k) != str(v)]
    if differ:
        step.actions.append(
            Command(
                "sysctl -q -w " + " ".join(shlex.quote(f"{k}={wanted[k]}") for k in differ),
                "apply the values now",
            )
        )

        def verify(t: Transport) -> None:
            res = t.sudo("sysctl -n " + " ".join(wanted))
            got = res.stdout.split()
            if not res.ok or got != [str(v) for v in wanted.values()]:
                raise StepError(
                    f"sysctls did not stick: wanted {list(wanted.values())}, read back {got}", t.name
                )

        step.verify = verify
    return step
