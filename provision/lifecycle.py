"""What provision did to a host, so `provision uninstall` can undo exactly that, and what
`provision status` reports.

The record (/usr/local/lib/berth/provision-state.json) says whether provision created the
container group, which users it added to it, which engine packages it installed and which
managed files did not exist before its first run (those are removed; the others get their
PATH.berth-orig backup back, see Transport.put).
"""

from __future__ import annotations

import json
import shlex

from provision.bundle import BIN_DIR, LIB_DIR
from provision.options import APT_SOURCES, DOCKER_REPO, EL_BASE_REPO, MODULES_FILE, SYSCTL_FILE, Options
from provision.steps.base import FileChange, file_state
from provision.steps.engine_facts import BERTHD_UNIT, DIRECT_LOG, PIDFILE, socket_path
from provision.steps.service import Control
from provision.transport import Transport

STATE_FILE = f"{LIB_DIR}/provision-state.json"
ENGINE_PKGS = ["docker.io", "docker-ce", "docker-ce-cli", "containerd.io"]


def read_state(facts: dict) -> dict:
    cur = (facts.get("engine_files") or {}).get(STATE_FILE)
    try:
        return json.loads(cur["content"]) if cur else {}
    except ValueError:
        return {}


def state_change(facts: dict, opts: Options, installing: list[str]) -> FileChange | None:
    """The record after this run: what existed before provision is never claimed later."""
    st = read_state(facts)
    files = facts.get("files") or {}
    group = facts.get("group")
    users = facts.get("users") or {}
    new = {
        "engine": opts.engine,
        "group": opts.group,
        "created_group": bool(st.get("created_group")) or group is None,
        "added_users": sorted(
            set(st.get("added_users", []))
            | {u for u in opts.users if users.get(u) is not None and opts.group not in users[u]}
        ),
        "installed_packages": sorted(set(st.get("installed_packages", [])) | set(installing)),
        # files absent before provision first ran: uninstall removes them (with their backups)
        "created_files": sorted(
            set(st.get("created_files", []))
            | (set() if st else {p for p in opts.managed_files() if files.get(p) is None})
        ),
        "data_root": opts.data_root,
    }
    data = (json.dumps(new, indent=2, sort_keys=True) + "\n").encode()
    return file_state(facts.get("engine_files") or {}, STATE_FILE, data, 0o644, backup=False)


def restore_script(path: str, created: bool) -> str:
    """sh: remove PATH (and its backups) when provision created it, else put PATH.berth-orig back."""
    q = shlex.quote(path)
    if created:
        return f"rm -f {q} {q}.berth-orig {q}.bak"
    return f"if [ -e {q}.berth-orig ]; then mv -f {q}.berth-orig {q}; fi; rm -f {q}.bak"


def uninstall_script(
    t: Transport, opts: Options, state: dict, config: dict, systemd: bool, purge: bool
) -> str:
    """The whole uninstall as one sh script run as root (idempotent: a second run does nothing)."""
    engine = state.get("engine", opts.engine)
    berth = engine == "berth"
    sock = socket_path(config, engine)
    client = f"{BIN_DIR}/berth" if berth else "docker"
    data_root = config.get("data-root") or state.get("data_root") or opts.data_root
    if not berth:
        data_root = config.get("data-root") or "/var/lib/docker"
    ctl = Control("berthd" if berth else "docker", systemd, sock, client, "")
    cli = f"{client} -H unix://{shlex.quote(sock)}"
    lines = [
        # containers are stopped (removed too with --purge) while the engine still runs
        f"if [ -S {shlex.quote(sock)} ] && {cli} version >/dev/null 2>&1; then",
        f"  ids=$({cli} ps -{'a' if purge else ''}q 2>/dev/null)",
        f'  [ -z "$ids" ] || {cli} {"rm -f" if purge else "stop -t 5"} $ids >/dev/null 2>&1 || true',
        "fi",
        ctl.stop(),
    ]
    if berth:
        lines += [
            f"rm -f {BERTHD_UNIT} {BIN_DIR}/berth {BIN_DIR}/berthd {PIDFILE} {DIRECT_LOG}",
            f"rm -f {shlex.quote(sock)}",
            "[ -d /run/systemd/system ] && systemctl daemon-reload",
            "systemctl reset-failed berthd 2>/dev/null; true",
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


def status_script(engine: str, sock: str) -> str:
    """sh printing KEY=VALUE lines about the engine (run as root)."""
    client = f"{BIN_DIR}/berth" if engine == "berth" else "docker"
    svc = "berthd" if engine == "berth" else "docker"
    q = shlex.quote(sock)
    fmt = "-f json" if engine == "berth" else "--format '{{json .}}'"
    return (
        f"if systemctl is-active -q {svc} 2>/dev/null; then echo active=active; "
        f'elif p=$(cat {PIDFILE} 2>/dev/null) && kill -0 "$p" 2>/dev/null; then echo active=active-direct; '
        "else echo active=inactive; fi; "
        f'echo "enabled=$(systemctl is-enabled {svc} 2>/dev/null | head -n 1)"; '
        f"echo \"socket=$(stat -c '%U:%G %a' {q} 2>/dev/null || echo missing)\"; "
        f"echo \"info=$({client} -H unix://{q} info {fmt} 2>/dev/null | tr -d '\\n')\""
    )


def parse_status(out: str) -> dict:
    """Status lines -> {version, active, enabled, socket, mirrors, running}."""
    kv = {}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        kv[k] = v
    try:
        info = json.loads(kv.get("info") or "{}")
    except ValueError:
        info = {}
    return {
        "version": info.get("ServerVersion", "-"),
        "active": kv.get("active", "?"),
        "enabled": kv.get("enabled", "?"),
        "socket": kv.get("socket", "?"),
        "mirrors": (info.get("RegistryConfig") or {}).get("Mirrors") or [],
        "running": info.get("ContainersRunning", "-"),
        "driver": info.get("Driver", "-"),
    }


def _host_config(facts: dict, opts: Options, state: dict) -> tuple[dict, Options]:
    from provision import daemonjson

    engine = state.get("engine") or opts.engine
    o = Options(engine=engine, group=state.get("group", opts.group), data_root=opts.data_root)
    cur = (facts.get("files") or {}).get(o.daemon_json_path)
    try:
        config = daemonjson.parse_existing(None if cur is None else cur["content"], o.daemon_json_path)
    except Exception:  # noqa: BLE001 - a broken file must not stop an uninstall
        config = {}
    return config, o


def uninstall_host(target: str, job, purge: bool) -> dict:
    """Undo provision on one host; returns {target, status, error, notes}."""
    from provision.errors import ProvisionError
    from provision.facts import gather
    from provision.steps.engine import systemd_running

    out: dict = {"target": target, "status": "changed", "error": None, "notes": []}
    try:
        with job.connect(target) as t:
            facts = gather(t, job.opts)
            state = read_state(facts)
            config, o = _host_config(facts, job.opts, state)
            if not state and not (facts.get("engine") or {}).get("current"):
                out["notes"].append("provision's engine record is absent: removing only what is found")
            res = t.sudo(uninstall_script(t, o, state, config, systemd_running(facts), purge))
            if not res.ok:
                raise ProvisionError(f"uninstall failed: {res.brief()}", target, res)
            kept = [p for p in state.get("installed_packages", []) if p not in ENGINE_PKGS]
            if kept:
                out["notes"].append(f"left installed (other software may use them): {' '.join(kept)}")
            if not purge:
                out["notes"].append(
                    f"images, containers and volumes kept under {config.get('data-root') or o.data_root}"
                )
    except ProvisionError as e:
        out["status"], out["error"] = "failed", str(e)
    return out


def status_host(target: str, job) -> dict:
    """Engine version, active, socket, mirrors and running containers of one host."""
    from provision.errors import ProvisionError
    from provision.facts import gather

    try:
        with job.connect(target) as t:
            facts = gather(t, job.opts)
            state = read_state(facts)
            config, o = _host_config(facts, job.opts, state)
            sock = socket_path(config, o.engine)
            res = t.sudo(status_script(o.engine, sock))
            st = parse_status(res.stdout)
            st.update(target=target, engine=o.engine, socket_path=sock, error=None)
            return st
    except ProvisionError as e:
        return {"target": target, "error": str(e)}
