#!/usr/bin/env python3
"""What the vfs storage driver costs beside overlay2: create + start + wait + rm of `true`,
and the disk one created container adds, for busybox (~1 MB) and, when the lab's debootstrap
rootfs is cached, a Debian minbase image (~330 MB). The two engines take turns inside one loop
on the same ext4 disk, so load changes hit both alike. Prints medians and the vfs/overlay2
ratio.

    sudo .venv/bin/python bench/storage_drivers.py [--runs 10] [--dir /tmp]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import imagefactory  # noqa: E402
from tests.engine.conftest import _cgroup_dirs, make_engine, remove_all_containers  # noqa: E402


def _du(path):
    # type: (str) -> int
    out = subprocess.run(["du", "-sb", path], stdout=subprocess.PIPE, check=True).stdout
    return int(out.split()[0])


class Side(object):
    """One engine (one driver) with the images loaded."""

    def __init__(self, tmp, driver, archives):
        self.driver = driver
        self.parent = "berth-bench-" + uuid.uuid4().hex[:8]
        self.eng = make_engine(os.path.join(tmp, driver),
                               {"cgroup-parent": self.parent, "storage-driver": driver})
        for path in archives:
            with open(path, "rb") as f:
                self.eng.image_load(f)
        self.times = {}  # type: dict

    def once(self, image):
        eng = self.eng
        t0 = time.perf_counter()
        cid = eng.container_create({"Image": image, "Cmd": ["true"]})["Id"]
        t1 = time.perf_counter()
        eng.container_start(cid)
        eng.container_wait(cid)
        eng.container_remove(cid)
        t2 = time.perf_counter()
        self.times.setdefault(image, []).append((t1 - t0, t2 - t0))

    def container_disk(self, image):
        # type: (str) -> int
        cid = self.eng.container_create({"Image": image, "Cmd": ["true"]})["Id"]
        size = _du(os.path.join(self.eng.data_root, "containers", cid))
        self.eng.container_remove(cid)
        return size

    def close(self):
        remove_all_containers(self.eng)
        self.eng.close()
        for d in _cgroup_dirs(self.parent):
            if os.path.isdir(d):
                os.rmdir(d)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--dir", default="/tmp", help="where the data roots go (ext4 or xfs)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-drivers-", dir=args.dir)
    try:
        archives = [imagefactory.busybox_image_tar(os.path.join(tmp, "busybox.tar"))]
        images = ["busybox:latest"]
        if imagefactory.cached_debootstrap_rootfs():
            archives.append(imagefactory.debootstrap_image_tar(os.path.join(tmp, "debian.tar")))
            images.append("debian:bookworm")
        sides = [Side(tmp, "overlay2", archives), Side(tmp, "vfs", archives)]
        try:
            for image in images:
                for _ in range(args.runs):
                    for side in sides:
                        side.once(image)
            with open("/proc/loadavg") as f:
                print("load average: %s" % " ".join(f.read().split()[:3]))
            print("%-18s %-9s %12s %14s %12s" % ("image", "driver", "create ms", "create..rm ms",
                                                 "disk/ctr"))
            for image in images:
                med = {}
                for side in sides:
                    create = statistics.median(c for c, _ in side.times[image]) * 1000
                    total = statistics.median(t for _, t in side.times[image]) * 1000
                    med[side.driver] = (create, total)
                    print("%-18s %-9s %12.1f %14.1f %12s" % (image, side.driver, create, total,
                                                             "%d kB" % (side.container_disk(image)
                                                                        // 1024)))
                print("%-18s vfs/overlay2: create %.1fx, create..rm %.1fx" % (
                    image, med["vfs"][0] / med["overlay2"][0], med["vfs"][1] / med["overlay2"][1]))
        finally:
            for side in sides:
                side.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
