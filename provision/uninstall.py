"""`provision uninstall`: undo what the install record (steps/record.py) says provision did,
and only that: the engine stopped and removed, packages it installed removed, files it
created deleted, files it changed restored from their PATH.berth-orig backup."""

from __future__ import annotations

import shlex

from provision.apply import Job, on_host
from provision.bundle import BIN_DIR, LIB_DIR
from provision.engine_kind import DIRECT_LOG, PIDFILE
from provision.errors import ProvisionError
from provision.facts import gather
from provision.facts.system import systemd_running
from provision.options import APT_SOURCES, DOCKER_REPO, EL_BASE_REPO, MODULES_FILE, SYSCTL_FILE, Options
from provision.steps.record import read_state, recorded_engine
from provision.steps.service import Control
from provision.transport import Transport

NETWORK_NOTE = "network: "  # the prefix of berthd --remove-network's line in the script's output
# the only packages uninstall removes (when the record says provision installed them)
ENGINE_PKGS = ["docker.io", "docker-ce", "docker-ce-cli", "containerd.io"]


def restore_script(path: str, created: bool) -> str:
    """sh: remove PATH (and its backups) when provision created it, else put PATH.berth-orig back."""
    q = shlex.quote(path)
    if created:
        return f"rm -f {q} {q}.berth-orig {q}.bak"
    return f"if [ -e {q}.berth-orig ]; then mv -f {q}.berth-orig {q}; fi; rm -f {q}.bak"


def uninstall_script(opts: Options, state: dict, config: dict, systemd: bool, purge: bool) -> str:
    """The whole uninstall as one sh script run as root (idempotent: a second run does nothing)."""
    kind = opts.kind
    sock = kind.socket(config)
    data_root = config.get("data-root") or kind.default_data_root
    if kind.installs_bundle:
        data_root = config.get("data-root") or state.get("data_root") or opts.data_root
    ctl = Control(kind.service, systemd, sock, kind.client, "")
    cli = kind.cli(sock)
    lines = [
        # containers are stopped (removed too with --purge) while the engine still runs
        f"if [ -S {shlex.quote(sock)} ] && {cli} version >/dev/null 2>&1; then",
        f"  ids=$({cli} ps -{'a' if purge else ''}q 2>/dev/null)",
        f'  [ -z "$ids" ] || {cli} {"rm -f" if purge else "stop -t 5"} $ids >/dev/null 2>&1 || true',
        "fi",
        ctl.stop(),
    ]
    if kind.installs_bundle:
        lines += [
            # the bridges, veths, iptables chains and firewalld zone berthd made (it prints one
            # line, kept as a note); a failure here must not stop the rest of the uninstall
            f"if [ -x {kind.daemon} ]; then {kind.daemon} --remove-network --config-file "
            f"{shlex.quote(kind.config_file)} | sed 's/^/{NETWORK_NOTE}/' || true; fi",
            f"rm -f {kind.unit} {BIN_DIR}/berth {BIN_DIR}/berthd {PIDFILE} {DIRECT_LOG}",
            f"rm -f {shlex.quote(sock)}",
            # its parent cgroups, empty now that it and its containers have stopped (the default
            # parent only: a cgroup-parent set in daemon.json is the admin's)
            "" if config.get("cgroup-parent") else
            "for d in /sys/fs/cgroup/berth /sys/fs/cgroup/*/berth; do [ -d \"$d\" ] && "
            "find \"$d\" -depth -type d -exec rmdir {} + 2>/dev/null; done; true",
            "[ -d /run/systemd/system ] && systemctl daemon-reload",
            f"systemctl reset-failed {kind.service} 2>/dev/null; true",
        ]
    pkgs = [p for p in state.get("installed_packages", []) if p in ENGINE_PKGS]
    if pkgs:
        names = " ".join(pkgs)
        lines.append(
            f"if command -v apt-get >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get -q -y "
            f"{'purge' if purge else 'remove'} {names} >/dev/null; else yum -y -q remove {names}; fi"
        )
    created = set(state.get("created_files", []))
    for path in (MODULES_FILE, SYSCTL_FILE, "/etc/berth/daemon.json", "/etc/docker/daemon.json"):
        lines.append(restore_script(path, path in created))
    for path in (EL_BASE_REPO, DOCKER_REPO, APT_SOURCES):
        lines.append(restore_script(path, path in created))
    lines.append("rmdir /etc/berth 2>/dev/null || true")
    group = state.get("group", opts.group)
    g = shlex.quote(group)
    if state.get("created_group"):
        lines.append(f"getent group {g} >/dev/null && groupdel {g} || true")
    else:
        for u in state.get("added_users", []):
            lines.append(f"gpasswd -d {shlex.quote(u)} {g} >/dev/null 2>&1 || true")
    if purge:
        d = shlex.quote(data_root.rstrip("/") or "/nonexistent")
        lines += [
            # leftover mounts of containers first (deepest first), then the tree; a data root that
            # is itself a mount point keeps its (now empty) directory
            f"grep -o ' {data_root.rstrip('/')}/[^ ]*' /proc/self/mounts | sort -r | "
            'while read -r m; do umount -l "$m" 2>/dev/null; done; true',
            f"if [ -d {d} ]; then find {d} -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {{}} +; "
            f"mountpoint -q {d} || rmdir {d}; fi",
        ]
    lines.append(f"rm -rf {LIB_DIR}")
    return "\n".join(lines)


def _uninstall(t: Transport, opts: Options, purge: bool) -> list[str]:
    """Run the uninstall on an open transport; the notes for the user."""
    notes = []
    facts = gather(t, opts)
    state = read_state(facts)
    config, o = recorded_engine(facts, opts, state)
    if not state and not (facts.get("engine") or {}).get("current"):
        notes.append("provision's engine record is absent: removing only what is found")
    res = t.sudo(uninstall_script(o, state, config, systemd_running(facts), purge))
    if not res.ok:
        raise ProvisionError(f"uninstall failed: {res.brief()}", t.name, res)
    notes += [line for line in res.stdout.splitlines() if line.startswith(NETWORK_NOTE)]
    kept = [p for p in state.get("installed_packages", []) if p not in ENGINE_PKGS]
    if kept:
        notes.append(f"left installed (other software may use them): {' '.join(kept)}")
    if not purge:
        notes.append(f"images, containers and volumes kept under {config.get('data-root') or o.data_root}")
    return notes


def uninstall_host(target: str, job: Job, purge: bool) -> dict:
    """Undo provision on one host; returns {target, status, error, notes}."""
    notes, err = on_host(target, job, lambda t: _uninstall(t, job.opts, purge))
    if err:
        return {"target": target, "status": "failed", "error": err, "notes": []}
    return {"target": target, "status": "changed", "error": None, "notes": notes}
