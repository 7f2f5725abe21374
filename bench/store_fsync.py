#!/usr/bin/env python3
"""What the store's durable writes cost: `docker load` of an image (busybox plus a random layer
of --mb MB) and a volume create, with the fsync discipline (blob fsync, syncfs of an unpacked
layer, fsync of the file and its directory around each rename) and with those calls made no-ops
in this process. The two arms take turns inside one loop on the same disk, each on a fresh data
root, so load changes hit both alike. Prints medians and the durable/plain ratio.

    sudo .venv/bin/python bench/store_fsync.py [--runs 10] [--mb 8] [--dir /tmp]
"""

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runtime import atomicfile  # noqa: E402
from runtime.store import blobs, layers  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.engine.conftest import make_engine  # noqa: E402


@contextlib.contextmanager
def plain():
    """The store's fsync, fsync_dir and syncfs calls as no-ops."""
    saved = (os.fsync, atomicfile.fsync_dir, blobs.fsync_dir, layers.fsync_dir, layers.syncfs)
    noop = lambda *a: None  # noqa: E731
    os.fsync = noop
    atomicfile.fsync_dir = blobs.fsync_dir = layers.fsync_dir = layers.syncfs = noop
    try:
        yield
    finally:
        (os.fsync, atomicfile.fsync_dir, blobs.fsync_dir, layers.fsync_dir, layers.syncfs) = saved


def one(base, archive):
    """Seconds for load + volume create on a fresh data root."""
    root = tempfile.mkdtemp(prefix="fsync-", dir=base)
    try:
        eng = make_engine(root)
        start = time.perf_counter()
        with open(archive, "rb") as f:
            eng.image_load(f)
        eng.volume_create("vol")
        took = time.perf_counter() - start
        eng.close()
        return took
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--mb", type=int, default=8)
    p.add_argument("--dir", default="/tmp")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-fsync-", dir=args.dir)
    try:
        layer = imagefactory.layer_tar([("dir", "d"), ("file", "d/blob", os.urandom(args.mb << 20))])
        archive = os.path.join(work, "image.tar")
        imagefactory.docker_archive(archive, [imagefactory.Image(
            "bench:1", [imagefactory.busybox_layer_tar(), layer])])
        times = {"durable": [], "plain": []}
        for _ in range(args.runs):
            times["durable"].append(one(work, archive))
            with plain():
                times["plain"].append(one(work, archive))
        med = {k: statistics.median(v) for k, v in times.items()}
        print("load of busybox + %d MB layer, then volume create; medians of %d (load average %s)"
              % (args.mb, args.runs, " ".join("%.1f" % x for x in os.getloadavg())))
        for k in ("durable", "plain"):
            print("  %-8s %7.1f ms" % (k, med[k] * 1000))
        print("  durable/plain: %.2fx" % (med["durable"] / med["plain"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
