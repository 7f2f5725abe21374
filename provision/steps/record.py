"""What provision did to a host, so `provision uninstall` can undo exactly that and
`provision status` asks the right engine.

The record (/usr/local/lib/berth/provision-state.json) says which engine provision installed,
whether it created the container group, which users it added to it, which engine packages it
installed and which managed files did not exist before its first run (those are removed; the
others get their PATH.berth-orig backup back, see Transport.put).
"""

from __future__ import annotations

import json

from provision import daemonjson
from provision.engine_kind import STATE_FILE
from provision.errors import ProvisionError
from provision.options import Options
from provision.steps.base import FileChange, file_state


def read_state(facts: dict) -> dict:
    """The record as found on the host; ``{}`` when absent or unreadable."""
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


def recorded_engine(facts: dict, opts: Options, state: dict) -> tuple[dict, Options]:
    """(daemon.json as on the host, options for the engine the record names): what uninstall
    and status work on. A broken daemon.json reads as ``{}`` (it must not stop an uninstall)."""
    o = Options(
        engine=state.get("engine") or opts.engine,
        group=state.get("group", opts.group),
        data_root=opts.data_root,
    )
    cur = (facts.get("files") or {}).get(o.daemon_json_path)
    try:
        config = daemonjson.parse_existing(None if cur is None else cur["content"], o.daemon_json_path)
    except ProvisionError:
        config = {}
    return config, o
