"""`berthd --check-store [--repair]`: the data root's checker (runtime/datacheck.py) run
offline, deep (every blob re-hashed, every layer walked). One line per finding, then a summary.
Exit 0 when nothing is left to do, 1 otherwise (or when the check cannot run).

--repair applies only the safe fixes and refuses to run while a berthd serves the data root
(an interrupted download in progress would look like a leftover)."""

import os

from runtime import TYPE_CHECKING, datacheck
from runtime.daemon import config as cfgmod
from runtime.store import driver
from runtime.store.images import ImageStore

if TYPE_CHECKING:
    from typing import IO, Any, Dict, List, Optional  # noqa: F401


def main(cfg, repair, out, err):
    # type: (Dict[str, Any], bool, IO[str], IO[str]) -> int
    """Check (and with repair, fix) the data root cfg["data-root"]."""
    data_root = os.path.abspath(cfg["data-root"])
    image_root = os.path.join(data_root, "image")
    if not os.path.isdir(data_root):
        err.write("berthd: no data root at %s: nothing to check\n" % data_root)
        return 1
    live = cfgmod.serving_socket(cfg)
    if repair and live:
        err.write("berthd: a berthd is serving %s on %s: stop it before --repair (or run "
                  "`berth system check` for a read-only check)\n" % (data_root, live))
        return 1
    made_by = driver.recorded(image_root) or driver.check_name(cfg.get("storage-driver")) \
        or driver.OVERLAY2
    store = ImageStore(image_root, made_by)
    if repair:
        with store.lock:
            found = datacheck.check(data_root, store, deep=True)
            datacheck.repair(found)
    else:
        found = datacheck.check(data_root, store, deep=True)
    for f in found:
        out.write(f.line() + "\n")
    rest = datacheck.outstanding(found)
    repaired = sum(1 for f in found if f.repaired)
    safe = sum(1 for f in rest if f.repair == datacheck.SAFE)
    out.write("%s: %d finding(s), %d repaired, %d left (%d safe to repair with --repair, "
              "%d need a decision)\n" % (data_root, len(found), repaired, len(rest), safe,
                                         len(rest) - safe))
    return 1 if rest else 0
