"""Which engine steps follow the host preparation: berth's own engine, Docker CE / docker.io,
or none (``--no-install``: prepare the host only)."""

from __future__ import annotations

from provision.distros import Platform
from provision.options import Options
from provision.steps.base import StepPlan
from provision.steps.daemon import ConfigChange


def plan_engine(
    facts: dict, plat: Platform, opts: Options, config: ConfigChange, refreshed: bool
) -> list[StepPlan]:
    """The engine install steps for ``opts.engine`` (after the host preparation steps)."""
    if not opts.install_engine:
        return []
    if opts.kind.installs_bundle:
        from provision.steps.engine import plan_berth

        return plan_berth(facts, plat, opts, config)
    from provision.steps.docker_ce import plan_docker

    return plan_docker(facts, plat, opts, config, refreshed)
