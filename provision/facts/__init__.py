"""Gather every fact of one host in one round trip (see :mod:`provision.facts.base`)."""

from __future__ import annotations

from provision.engine_kind import package_names
from provision.errors import FactError
from provision.facts.base import build_script, parse_sections, split_sections
from provision.facts.engine import engine_facts, socket_paths
from provision.facts.system import system_facts
from provision.options import MODULES, SYSCTLS, Options, remap_names
from provision.transport import Transport

EXTRA_SYSCTLS = ["user.max_user_namespaces"]


def gather(t: Transport, opts: Options) -> dict:
    """Run the facts script (as root) and parse it; FactError if the output is unusable."""
    facts = system_facts(
        opts.data_root,
        opts.managed_files(),
        opts.users + ([remap_names(opts.userns_remap)[0]] if opts.userns_remap else []),
        # the engine's packages only matter to the engine steps (not run with --no-install)
        list(dict.fromkeys(list(opts.packages) + (package_names() if opts.install_engine else []))),
        list(SYSCTLS) + EXTRA_SYSCTLS,
        MODULES,
        opts.group,
    ) + engine_facts(opts.kind, socket_paths(opts.kind, opts.wanted_daemon_json()))
    res = t.sudo("LC_ALL=C; export LC_ALL\n" + build_script(facts))
    sections = split_sections(res.stdout)
    if "__end__" not in sections:
        raise FactError(
            f"could not read facts on {t.name}: {res.brief()} (is /bin/sh a POSIX shell?)", t.name, res
        )
    return parse_sections(facts, sections)
