#!/usr/bin/env python3
"""What userns-remap costs on the start path: create + start + wait + rm of `true` in busybox
by berth's engine without a remap, with `userns-remap` and idmapped layers (the user
namespace made per start, one idmapped mount per layer), and with the layers' shifted copies
(BERTH_USERNS_IDMAP=0: made once, then shared), taking turns in one loop. Prints medians and
the differences to the engine without a remap.

    sudo .venv/bin/python bench/userns_start.py [--runs 40] [--nice -20]

The id files are a temporary root's (BERTH_ID_ROOT), never the host's /etc.
"""

import argparse
import os
import shutil
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.container_start import WARM_UP, Berth, ms  # noqa: E402
from runtime.container.proc.rootfs import MASKED_PATHS  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.engine.conftest import make_engine  # noqa: E402


def _id_root(path):
    """passwd/group/shadow for useradd --prefix, empty subordinate id files."""
    etc = os.path.join(path, "etc")
    os.makedirs(etc)
    for name, text in (("passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("group", "root:x:0:\n"),
                       ("shadow", ""), ("gshadow", ""), ("subuid", ""), ("subgid", "")):
        with open(os.path.join(etc, name), "w") as f:
            f.write(text)
    return path


class Remapped(Berth):
    """berth's engine with daemon.json userns-remap default (idmap False: the layers' copies)."""

    def __init__(self, tmp, archive, name, idmap):
        os.environ["BERTH_ID_ROOT"] = _id_root(os.path.join(tmp, "ids"))
        os.environ["BERTH_USERNS_IDMAP"] = "1" if idmap else "0"
        try:  # (both read when the engine is made)
            self.host_config = {"NetworkMode": "none"}
            self.name = name
            self.parent = "berth-bench-" + uuid.uuid4().hex[:8]
            self.eng = make_engine(os.path.join(tmp, "berth"), {"cgroup-parent": self.parent,
                                                                "userns-remap": "default"})
        finally:
            del os.environ["BERTH_ID_ROOT"], os.environ["BERTH_USERNS_IDMAP"]
        with open(archive, "rb") as f:
            self.eng.image_load(f)
        self.phases = {"create": [], "start": [], "wait": [], "rm": []}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--nice", type=int, default=0, metavar="N")
    args = ap.parse_args()
    if args.nice:
        os.nice(args.nice)
    tmp = tempfile.mkdtemp(prefix="userns-bench-", dir="/var/tmp")
    archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "busybox.tar")))
    engines = []
    try:
        engines.append(Berth(os.path.join(tmp, "plain"), archive, name="berth"))
        # the same path as a remapped start but for the user namespace: no spare PID 1 (whose
        # namespaces and /proc, /sys, /dev are made ahead of the request) can serve it
        engines.append(Berth(os.path.join(tmp, "fresh"), archive, name="berth, no spare",
                             host_config={"MaskedPaths": list(MASKED_PATHS)}))
        engines.append(Remapped(os.path.join(tmp, "idmap"), archive, "userns-remap, idmapped layers", True))
        engines.append(Remapped(os.path.join(tmp, "copy"), archive, "userns-remap, layer copies", False))
        times = {e.name: [] for e in engines}
        for i in range(WARM_UP + args.runs):
            for e in engines:
                t = e.once(keep=i >= WARM_UP)
                if i >= WARM_UP:
                    times[e.name].append(t)
        base = ms(times["berth"])
        print("create+start+wait+rm of `true`, median of %d taking turns" % args.runs)
        for e in engines:
            med = ms(times[e.name])
            print("  %-32s %7.1f ms  (%+.1f ms)" % (e.name, med, med - base))
    finally:
        for e in engines:
            e.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
