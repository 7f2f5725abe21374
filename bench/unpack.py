"""Layer unpack speed: berth's unpacker beside GNU `tar -x` on the same layer, same disk.

    python bench/unpack.py [--runs 5] [--gzip] [--layer FILE.tar]

The layer is the lab's cached debootstrap rootfs packed with GNU tar when it exists (about
440 MB, 15,000 entries), else a generated one (~200 MB, ~6,800 files of Debian-like sizes).
Each run unpacks into a fresh dir; the page cache is flushed (sync) and old trees deleted
outside the timed part. User and system CPU seconds are printed beside wall time: on a busy
machine the kernel's share (the same work for both) swings most. berth's figure includes
computing the diff_id (sha256 of the tar, in a thread beside the unpack); "berth (diff_id
known)" is the store's path for a plain blob whose digest was verified when it was written.
Target: berth / tar <= 1.3.
"""

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from runtime.store import unpack  # noqa: E402

LAB_CACHE = "/var/cache/berth-lab"


def find_rootfs():
    """The lab's cached Debian rootfs, if complete."""
    if os.path.isdir(LAB_CACHE):
        for name in sorted(os.listdir(LAB_CACHE)):
            d = os.path.join(LAB_CACHE, name)
            if os.path.exists(os.path.join(d, ".berth-lab-complete")):
                return d
    return None


def generate_tree(root, total=200 << 20, files=6800):
    """A tree of `files` files with a skewed size distribution summing to about `total`."""
    rnd = random.Random(42)
    sizes = [rnd.paretovariate(1.2) for _ in range(files)]
    scale = total / sum(sizes)
    blob = os.urandom(1 << 20)
    for i, s in enumerate(sizes):
        d = os.path.join(root, "usr/lib/d%03d" % (i % 300))
        os.makedirs(d, exist_ok=True)
        n = min(int(s * scale), 16 << 20)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            while n > 0:
                f.write(blob[:min(n, len(blob))])
                n -= len(blob)
        if i % 10 == 0:
            os.symlink("f%05d" % i, os.path.join(d, "l%05d" % i))


def make_layer(work, gz):
    """(layer path, description)."""
    rootfs = find_rootfs()
    src = rootfs
    if not rootfs:
        src = os.path.join(work, "gen")
        generate_tree(src)
    layer = os.path.join(work, "layer.tar")
    subprocess.run(["tar", "--numeric-owner", "-C", src, "-cf", layer, "."], check=True)
    what = "debootstrap rootfs %s" % rootfs if rootfs else "generated tree"
    if gz:
        subprocess.run(["gzip", "-1", "-k", layer], check=True)
        layer += ".gz"
    return layer, what


def _cpu():
    """(user, system) CPU seconds of this process and its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def timed(fn, work, name):
    """(wall, cpu) seconds for fn(dest) into a fresh dir; clean-up and sync happen outside."""
    dest = os.path.join(work, name)
    if os.path.exists(dest):
        subprocess.run(["rm", "-rf", dest], check=True)
    os.mkdir(dest)
    subprocess.run(["sync"], check=True)
    c, t = _cpu(), time.perf_counter()
    fn(dest)
    wall, c2 = time.perf_counter() - t, _cpu()
    return wall, (c2[0] - c[0], c2[1] - c[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gzip", action="store_true", help="compare gzip layers (tar -xzf)")
    ap.add_argument("--layer", help="an existing layer tar to use")
    ap.add_argument("--dir", default="/var/tmp", help="where to unpack (a real disk, not tmpfs)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="berth-bench-unpack-", dir=args.dir)
    try:
        if args.layer:
            layer, what = args.layer, args.layer
        else:
            layer, what = make_layer(work, args.gzip)
        size = os.path.getsize(layer)
        print("layer: %s, %.0f MB%s" % (what, size / 1e6, " (gzip)" if args.gzip else ""))
        tar_flags = "-xzf" if args.gzip else "-xf"
        cases = [
            ("GNU tar %s" % tar_flags,
             lambda d: subprocess.run(["tar", tar_flags, layer, "-C", d], check=True)),
            ("berth (+ diff_id)", lambda d: unpack.unpack_file(layer, d, gz=args.gzip)),
        ]
        if not args.gzip:
            cases.append(("berth (diff_id known)",
                          lambda d: unpack.unpack_file(layer, d, hash_it=False)))
        results = {name: [] for name, _ in cases}
        cpu = {name: [] for name, _ in cases}
        for run in range(args.runs):
            order = list(enumerate(cases))
            order = order[run % len(order):] + order[:run % len(order)]  # rotate: no favourite slot
            for i, (name, fn) in order:  # interleaved: load noise hits all alike
                wall, used = timed(fn, work, "out%d" % i)
                results[name].append(wall)
                cpu[name].append(used)
        base = statistics.median(results[cases[0][0]])
        print("%-24s %9s %9s %9s %7s %7s %7s" % ("", "median s", "min s", "MB/s", "ratio",
                                                  "user s", "sys s"))
        for name, _ in cases:
            med = statistics.median(results[name])
            print("%-24s %9.3f %9.3f %9.0f %7.2f %7.3f %7.3f" % (
                name, med, min(results[name]), size / 1e6 / med, med / base,
                statistics.median(u for u, _ in cpu[name]),
                statistics.median(k for _, k in cpu[name])))
        ratio = statistics.median(results[cases[1][0]]) / base
        best = min(results[cases[1][0]]) / min(results[cases[0][0]])
        print("berth / tar = %.2f median, %.2f best-of-%d (target <= 1.3): %s"
              % (ratio, best, args.runs, "OK" if ratio <= 1.3 else "MISSED"))
        print("load average during the run: %s" % open("/proc/loadavg").read().split()[0])
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
