"""Package repositories from templates (EL vault/mirror, Docker CE channel, apt sources) and
packages: only what is missing is installed, so a host that already has everything needs no
network at all."""

from __future__ import annotations

import shlex

from provision.distros import Platform
from provision.options import APT_DEB822, APT_SOURCES, DOCKER_REPO, EL_BASE_REPO, Options
from provision.render import render
from provision.steps.base import Command, StepPlan, file_state

APT_ENV = "DEBIAN_FRONTEND=noninteractive"


def refresh_command(plat: Platform) -> str:
    """The command that rebuilds the package cache after a repo change."""
    if plat.family == "el":
        return f"yum -y -q --releasever={plat.major} makecache"
    return f"{APT_ENV} apt-get -q update"


def plan_repos(facts: dict, plat: Platform, opts: Options, tvars: dict) -> StepPlan:
    """The repo files this engine and distro need; a cache refresh when any of them changed."""
    step = StepPlan("package repos")
    files = facts.get("files", {})
    wanted: list[tuple[str, str]] = []
    if plat.family == "el":
        if plat.id == "centos" and plat.major == 7 or (plat.is_el7 and opts.mirror):
            wanted.append((EL_BASE_REPO, "CentOS-Base.repo.j2"))
        if opts.kind.el_repo:
            wanted.append((DOCKER_REPO, "docker-ce.repo.j2"))
    elif opts.mirror:
        wanted.append((APT_SOURCES, "sources.list.j2"))
    for path, tmpl in wanted:
        change = file_state(files, path, render(tmpl, tvars))
        if change:
            step.actions.append(change)
    if plat.family == "debian" and opts.mirror:
        for path in APT_DEB822:
            if files.get(path) is not None:
                q = shlex.quote(path)
                step.actions.append(Command(f"mv -f {q} {q}.berth-orig", "disable the deb822 distro sources"))
    if step.actions:
        step.actions.append(Command(refresh_command(plat), "refresh the package cache from the new repos"))
    if not wanted:
        step.notes.append("no repo files needed (distro repos kept)")
    return step


def plan_packages(
    facts: dict, plat: Platform, packages: list[str], refreshed: bool, apt_pins: dict[str, str] | None = None
) -> StepPlan:
    """Install the packages that are not installed yet (nothing is fetched for the others);
    ``apt_pins`` installs those names at that version (``name=version``) on Debian/Ubuntu."""
    step = StepPlan("packages")
    have = facts.get("packages", set())
    missing = [p for p in packages if p not in have]
    if not missing:
        if packages:
            step.notes.append(f"already installed: {' '.join(packages)}")
        return step
    pins = apt_pins if plat.family != "el" and apt_pins else {}
    names = " ".join(shlex.quote(f"{p}={pins[p]}" if p in pins else p) for p in missing)
    if plat.family == "el":
        step.actions.append(
            Command(f"yum -y -q --releasever={plat.major} install {names}", "install packages")
        )
    else:
        if not refreshed:
            step.actions.append(Command(f"{APT_ENV} apt-get -q update", "fetch package lists"))
        step.actions.append(
            Command(f"{APT_ENV} apt-get -q -y install --no-install-recommends {names}", "install packages")
        )
    return step
