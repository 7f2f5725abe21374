"""The local volumes' checker: each `<data-root>/volumes/<name>/` needs a readable volume.json
and a _data/ directory. One without volume.json is a create or a removal that did not finish
(the engine does not show it): removing it is the safe fix. A complete volume is never removed."""

import json
import os
import shutil

from runtime import TYPE_CHECKING
from runtime.findings import MANUAL, SAFE, Finding

if TYPE_CHECKING:
    from typing import List  # noqa: F401


def check(root):
    # type: (str) -> List[Finding]
    """Findings for the volumes under root."""
    found = []  # type: List[Finding]
    if not os.path.isdir(root):
        return found
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        meta = os.path.join(path, "volume.json")
        for leftover in os.listdir(path):
            if leftover.startswith("volume.json.") and leftover.endswith(".tmp"):
                p = os.path.join(path, leftover)
                found.append(Finding("volume", name, "%s is an interrupted write's temp file" % p,
                                     "remove it", SAFE, lambda p=p: os.unlink(p), partial=True))
        if not os.path.exists(meta):
            found.append(Finding("volume", name, "directory %s has no volume.json (a create or "
                                 "removal that did not finish)" % path, "remove the directory",
                                 SAFE, lambda p=path: shutil.rmtree(p), partial=True))
            continue
        try:
            with open(meta) as f:
                json.load(f)
        except (OSError, ValueError) as e:
            found.append(Finding("volume", name, "volume.json is unreadable (%s)" % e,
                                 "write {} to %s (the data is kept)" % meta, MANUAL))
        if not os.path.isdir(os.path.join(path, "_data")):
            found.append(Finding("volume", name, "its _data directory is missing",
                                 "remove the volume (`berth volume rm %s`) and create it again"
                                 % name, MANUAL))
    return found
