"""The data root's checker: the image store (runtime/store/check.py), the containers
(runtime/container/check.py) and the volumes (runtime/volumes/check.py) in one report.

Used three ways: `berthd --check-store [--repair]` (the daemon stopped; deep: every blob is
re-hashed), `GET /berth/check` and `berth system check` (read-only, through a running berthd),
and berthd's start (cheap: no hashing; the safe fixes of what was never complete are applied,
leftovers of interrupted downloads are kept for the next pull to reuse).
"""

import os

from runtime import TYPE_CHECKING
from runtime.container import check as container_check
from runtime.findings import MANUAL, NONE, SAFE, Finding  # noqa: F401
from runtime.store import check as store_check
from runtime.volumes import check as volume_check

if TYPE_CHECKING:
    from typing import Any, Dict, List  # noqa: F401


def check(data_root, store, deep=True):
    # type: (str, Any, bool) -> List[Finding]
    """Every finding under data_root; store is its ImageStore (opened on its driver)."""
    found = store_check.check(store, deep=deep)
    volumes_root = os.path.join(data_root, "volumes")

    def volume_exists(name):
        # type: (str) -> bool
        return os.path.exists(os.path.join(volumes_root, name, "volume.json"))

    def image_exists(image_id):
        # type: (str) -> bool
        return image_id in set(store.ids())

    found.extend(container_check.check(os.path.join(data_root, "containers"), image_exists,
                                       volume_exists))
    found.extend(volume_check.check(volumes_root))
    return found


def repair(findings, reusable=True):
    # type: (List[Finding], bool) -> int
    """Apply the safe fixes (but not to content a pull reuses when reusable is False); the
    number applied."""
    n = 0
    for f in findings:
        if f.repair != SAFE or (f.reusable and not reusable):
            continue
        if f.apply():
            n += 1
    return n


def at_start(data_root, store):
    # type: (str, Any) -> List[Finding]
    """berthd's start: the cheap check under the store lock, with the safe fixes applied
    except to interrupted downloads' reusable content; every finding (repaired or not)."""
    with store.lock:
        found = check(data_root, store, deep=False)
        repair(found, reusable=False)
    return found


def outstanding(findings):
    # type: (List[Finding]) -> List[Finding]
    """The findings still needing something: not repaired, and not informational."""
    return [f for f in findings if not f.repaired and f.repair != NONE]


def report(findings):
    # type: (List[Finding]) -> Dict[str, Any]
    """The API's body: {"Findings": [...], "Problems": n (outstanding, non-partial),
    "Partial": n (interrupted downloads' leftovers)}."""
    rest = outstanding(findings)
    return {"Findings": [f.to_json() for f in findings],
            "Problems": sum(1 for f in rest if not f.partial),
            "Partial": sum(1 for f in rest if f.partial)}
