"""Gather every fact of one host in one round trip (see :mod:`provision.facts.base`)."""

from __future__ import annotations

from provision.errors import FactError
from provision.facts.base import build_script, parse_sections, split_sections
from provision.facts.system import system_facts
from provision.options import MODULES, SYSCTLS, Options
from provision.transport import Transport

EXTRA_SYSCTLS = ["user.max_user_namespaces"]


def gather(t: Transport, opts: Options) -> dict:
    """Run the facts script (as root) and parse it; FactError if the output is unusable."""
    from provision.steps.engine_facts import engine_facts, package_names, socket_paths

    facts = system_facts(
        opts.data_root,
        opts.managed_files(),
        opts.users,
        list(dict.fromkeys(list(opts.packages) + package_names())),
        list(SYSCTLS) + EXTRA_SYSCTLS,
        MODULES,
        opts.group,
    ) + engine_facts(opts.engine, socket_paths(opts))
    res = t.sudo("LC_ALL=C; export LC_ALL\n" + build_script(facts))
    sections = split_sections(res.stdout)
    if "__end__" not in sections:
        raise FactError(
            f"could not read facts on {t.name}: {res.brief()} (is /bin/sh a POSIX shell?)", t.name, res
        )
    return parse_sections(facts, sections)
