"""Facts + options -> the ordered step plans of one host. Everything is rendered and validated
here, before anything is applied, so bad input ends the host with nothing written."""

from __future__ import annotations

from provision.distros import Platform
from provision.engine_kind import BERTH
from provision.options import Options
from provision.steps import pending
from provision.steps.base import StepPlan
from provision.steps.daemon import plan_daemon_json
from provision.steps.engines import plan_engine
from provision.steps.groups import plan_group
from provision.steps.kernel import plan_modules, plan_sysctls
from provision.steps.repos import plan_packages, plan_repos
from provision.steps.userns import plan_userns, wanted_max_userns


def build_plan(facts: dict, plat: Platform, opts: Options) -> list[StepPlan]:
    """The host preparation steps in order, then the engine's install steps."""
    tvars = opts.template_vars(plat)
    if opts.userns_remap:
        tvars["sysctls"]["user.max_user_namespaces"] = wanted_max_userns(
            (facts.get("sysctl") or {}).get("user.max_user_namespaces")
        )
    repos = plan_repos(facts, plat, opts, tvars)
    daemon, config = plan_daemon_json(facts, opts.kind, opts.wanted_daemon_json())
    prep = [
        plan_modules(facts, tvars),
        plan_sysctls(facts, tvars),
        repos,
        plan_packages(facts, plat, opts.packages, refreshed=repos.changes),
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
