"""Facts + options -> the ordered step plans of one host. Everything is rendered and validated
here, before anything is applied, so bad input ends the host with nothing written."""

from __future__ import annotations

import json

from provision.checks import selinux_enabled
from provision.distros import Platform
from provision.engine_kind import BERTH, EL_SELINUX
from provision.options import Options
from provision.steps import pending
from provision.steps.base import StepPlan
from provision.steps.daemon import plan_daemon_json
from provision.steps.engines import plan_engine
from provision.steps.groups import plan_group
from provision.steps.kernel import plan_modules, plan_sysctls
from provision.steps.repos import plan_packages, plan_repos
from provision.steps.userns import plan_userns, wanted_max_userns


def _file_has_key(facts: dict, path: str, key: str) -> bool:
    """Whether the host's JSON file at path sets key (a broken file: the daemon.json step says so)."""
    cur = (facts.get("files") or {}).get(path)
    try:
        return cur is not None and key in json.loads(cur["content"] or b"{}")
    except (ValueError, TypeError):
        return False


def build_plan(facts: dict, plat: Platform, opts: Options) -> list[StepPlan]:
    """The host preparation steps in order, then the engine's install steps."""
    tvars = opts.template_vars(plat)
    if opts.userns_remap:
        tvars["sysctls"]["user.max_user_namespaces"] = wanted_max_userns(
            (facts.get("sysctl") or {}).get("user.max_user_namespaces")
        )
    repos = plan_repos(facts, plat, opts, tvars)
    wanted, packages = opts.wanted_daemon_json(), list(opts.packages)
    if opts.kind is BERTH and opts.install_engine and plat.family == "el" and selinux_enabled(facts):
        # containers labelled container_t with their own MCS pair, as dockerd does on EL
        packages += [p for p in EL_SELINUX if p not in packages]
        if not _file_has_key(facts, opts.kind.config_file, "selinux-enabled"):  # theirs stands
            wanted.setdefault("selinux-enabled", True)
    daemon, config = plan_daemon_json(facts, opts.kind, wanted)
    prep = [
        plan_modules(facts, tvars),
        plan_sysctls(facts, tvars),
        repos,
        plan_packages(facts, plat, packages, refreshed=repos.changes),
        *([plan_userns(facts, opts.userns_remap)] if opts.userns_remap and opts.kind is BERTH else []),
        daemon,
        plan_group(facts, opts.group, opts.gid, opts.users),
    ]
    plans = prep + plan_engine(facts, plat, opts, config, refreshed=repos.changes)
    plans = pending.guard(plans, opts.kind.service)
    if not any(p.actions for p in plans):  # nothing changes: the engine's cheap proof will do
        for p in plans:
            p.check = p.quick or p.check
    return plans
