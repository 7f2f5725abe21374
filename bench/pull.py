#!/usr/bin/env python3
"""Pull benchmark: a Debian-sized image (bookworm rootfs split into 4 gzip layers) from a
loopback docker-registry into an empty store, in one invocation:

- berth: a fresh process (the engine's image_pull as the daemon runs it; interpreter start and
  imports counted in `process`) on the machine's python3 and on CentOS 7's Python 3.6, with
  the time of its phases (downloads, unpacks, the syncfs before each layer is renamed in);
- `podman pull` (its own storage, overlay);
- the floor: the same blobs fetched with curl and unpacked by `gzip -dc | tar -x`, one pipe per
  layer, all layers in parallel;
- optionally `skopeo copy` + `umoci unpack`;
- where berth's time goes: each part on the same blobs alone (network read, sha256 of the
  blobs, inflate, sha256 of the tars, berth's unpack writing the files, syncfs);
- berth's no-op re-pull, in-process, through berthd's API and with `docker pull`.

    sudo .venv/bin/python bench/pull.py [--runs 3] [--python host --python 3.6]
                                        [--skip podman|umoci|parts|noop] [--base OTHER_TREE]

--base adds the pull of another checkout's runtime/ (before a change, say) to each round.

Targets: berth cold pull <= 0.35x podman pull and <= 1.3x the floor; no-op re-pull < 150 ms.
Each tool runs in a fresh storage dir; flushing and deleting trees happen outside the timed part.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import benchlib  # noqa: E402
from tests import imagefactory  # noqa: E402
from tests.registry.registries import Registry, skopeo_copy  # noqa: E402

CACHE = "/var/cache/berth-bench"
EXCLUDE = ("usr/share/locale", "usr/share/doc", "usr/share/man", "var/lib/apt/lists", "var/cache")
LAYERS = (  # (name, top-level paths); the rest of the rootfs goes to the first layer
    ("base", None),
    ("libs", ["usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu"]),
    ("lib", ["usr/lib"]),
    ("share", ["usr/share"]),
)
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json")

# Runs on any python the engine supports (3.6 included): stdlib and runtime/ only. Prints one
# JSON line: the cold pull's seconds, its phases' seconds (summed over layers, which overlap),
# and the no-op re-pull's.
PULL_SCRIPT = """
import json, os, sys, time
sys.path.insert(0, %(root)r)
from runtime.engine import Engine
from runtime.registry import pull
from runtime.store import layers, blobs
phases = {}
def timed(owner, name, key):
    fn = getattr(owner, name)
    def wrapper(*a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            phases[key] = phases.get(key, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)
timed(pull.Puller, "_download", "download (read, sha256, write, fsync of each blob)")
timed(pull.Puller, "_unpack", "unpack (inflate, sha256, write, syncfs of each layer)")
timed(layers, "syncfs", "  of which syncfs")
timed(blobs.BlobStore, "adopt", "  of which the blobs' fsync")
os.makedirs(%(data)r)
engine = Engine(data_root=%(data)r, config={"bridge": "none"})
t = time.perf_counter()
engine.image_pull(%(name)r, "1")
first = time.perf_counter() - t
t = time.perf_counter()
engine.image_pull(%(name)r, "1")
print(json.dumps({"cold": first, "phases": phases, "noop": time.perf_counter() - t}))
"""


def build_archive():
    """The docker-archive of the bench image, built once and cached."""
    path = os.path.join(CACHE, "debian-4layers.tar")
    if os.path.exists(path):
        return path
    rootfs = str(imagefactory.debootstrap_rootfs())
    os.makedirs(CACHE, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=CACHE)
    try:
        taken, tars = [], []
        # deepest paths first, so each later layer excludes what an earlier one took
        order = sorted(LAYERS, key=lambda layer: -max([p.count("/") for p in layer[1] or []] or [-1]))
        for name, paths in order:
            out = os.path.join(tmp, name + ".tar")
            excl = ["--exclude=./%s" % e for e in EXCLUDE + tuple(taken)]
            if paths is None:
                members = ["."]
            else:
                members = ["./" + p for p in paths if os.path.exists(os.path.join(rootfs, p))]
                taken += [p for p in paths]
            subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "--sort=name", "-cf", out]
                           + excl + members, check=True)
            tars.append((name, out))
        by_name = dict(tars)
        img = imagefactory.Image("bench/debian:1", [by_name[n] for n, _ in LAYERS], cmd=["bash"], gzip=True)
        imagefactory.docker_archive(path + ".tmp", [img])
        os.rename(path + ".tmp", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def settle():
    """Flush what earlier steps wrote or deleted, so its writeback is not timed in the next
    step (each tool writes ~300 MB; on this disk the flush takes seconds)."""
    os.sync()


CPU = {}  # type: dict


def children_cpu():
    """CPU seconds (user + sys) of the waited-for children so far: unlike wall time, it does
    not grow with the machine's load."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, cpu_key=None, **kw):
    """Wall time of a command that must succeed (after settle()); its CPU time under cpu_key."""
    settle()
    c = children_cpu()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    wall = time.perf_counter() - t
    if cpu_key:
        CPU.setdefault(cpu_key, []).append(children_cpu() - c)
    return wall


def noop_through_berthd(work, name, n=7):
    """No-op re-pulls through a running berthd: the raw API call (POST /images/create, whole
    progress stream read) and `docker pull` (the docker CLI's own startup included)."""
    from tests.api.conftest import Berthd
    base = os.path.join(work, "berthd")
    os.makedirs(base)
    daemon = Berthd(base).start()
    try:
        path = "/images/create?fromImage=%s&tag=1" % name
        status, _, body = daemon.api("POST", path)
        assert status == 200 and b"Status: Downloaded newer image" in body, body[-300:]
        api, cli = [], []
        for _ in range(n):
            t = time.perf_counter()
            status, _, body = daemon.api("POST", path)
            api.append(time.perf_counter() - t)
            assert b"Image is up to date" in body, body[-300:]
            t = time.perf_counter()
            p = daemon.docker("pull", "-q", name + ":1")
            cli.append(time.perf_counter() - t)
            assert p.returncode == 0, p.stderr
        return {"berthd_api_noop": api, "docker_cli_noop": cli}
    finally:
        daemon.cleanup()


def layer_urls(reg, name):
    """[(blob URL, size)] of the image's layers, from the registry's manifest."""
    req = urllib.request.Request("%s/v2/%s/manifests/1" % (reg.url, name), headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(req) as r:
        m = json.loads(r.read().decode())
    return [("%s/v2/%s/blobs/%s" % (reg.url, name, x["digest"]), x["size"]) for x in m["layers"]]


def floor(urls, dest):
    """The floor: one `curl | gzip -dc | tar -x` per layer, all at once; seconds."""
    settle()
    c = children_cpu()
    t = time.perf_counter()
    procs = []
    for k, (url, _) in enumerate(urls):
        d = os.path.join(dest, str(k))
        os.makedirs(d)
        pipe = 'curl -sf "$1" | gzip -dc | tar -x -C "$2"'
        procs.append(subprocess.Popen(["sh", "-c", pipe, "sh", url, d]))
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("the floor's pipe failed (%d)" % p.returncode)
    wall = time.perf_counter() - t
    CPU.setdefault("floor", []).append(children_cpu() - c)
    return wall


def parts(urls, work):
    """Each part of a pull alone, on the same blobs, one layer after another: seconds for all."""
    out = {}
    settle()
    t = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", u]) for u, _ in urls]
    for p in procs:
        p.wait()
    out["network read (curl > /dev/null, in parallel)"] = time.perf_counter() - t
    blobs = []
    for u, _ in urls:
        with urllib.request.urlopen(u) as r:
            blobs.append(r.read())
    t = time.perf_counter()
    for b in blobs:
        hashlib.sha256(b).hexdigest()
    out["sha256 of the blobs"] = time.perf_counter() - t
    t = time.perf_counter()
    tars = [zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(b) for b in blobs]
    out["inflate (zlib)"] = time.perf_counter() - t
    del blobs
    t = time.perf_counter()
    for b in tars:
        hashlib.sha256(b).hexdigest()
    out["sha256 of the tars (diff_ids)"] = time.perf_counter() - t
    paths = []
    for k, b in enumerate(tars):
        paths.append(os.path.join(work, "layer%d.tar" % k))
        with open(paths[-1], "wb") as f:
            f.write(b)
    del tars
    from runtime.store import unpack
    settle()
    t = time.perf_counter()
    for k, p in enumerate(paths):
        d = os.path.join(work, "unpacked%d" % k)
        os.makedirs(d)
        unpack.unpack_file(p, d, gz=False, hash_it=False)
    out["write: berth's unpack of the plain tars (no sync)"] = time.perf_counter() - t
    t = time.perf_counter()
    from runtime.store.layers import syncfs
    syncfs(work)
    out["syncfs of what the unpack wrote"] = time.perf_counter() - t
    t = time.perf_counter()
    for k in range(len(paths)):
        subprocess.run(["tar", "-x", "-f", paths[k], "-C", os.path.join(work, "unpacked%d" % k),
                        "--overwrite"], check=False, stderr=subprocess.DEVNULL)
    out["(GNU tar -x of the plain tars over them, for comparison)"] = time.perf_counter() - t
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--python", action="append", default=[], help="host or 3.6 (default: both)")
    ap.add_argument("--skip", action="append", default=[], help="podman, umoci, parts or noop")
    ap.add_argument("--base", metavar="TREE", help="also pull with the runtime/ of this tree (A/B)")
    args = ap.parse_args()
    pys = benchlib.pythons(args.python or ["host", "3.6"])
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    archive = build_archive()
    work = tempfile.mkdtemp(prefix="berth-bench-pull-")
    reg = Registry(os.path.join(work, "registry")).start()
    try:
        skopeo_copy("docker-archive:" + archive, "docker://%s/bench/debian:1" % reg.host)
        name = "%s/bench/debian" % reg.host
        urls = layer_urls(reg, "bench/debian")
        size = sum(s for _, s in urls)
        results = {"floor": []}
        phases = {}
        trees = [("", ROOT)] + ([(" base", os.path.abspath(args.base))] if args.base else [])
        for label in pys:
            for tag, _ in trees:
                results["berth %s%s" % (label, tag)] = []
        for label in pys:
            results["berth %s process" % label] = []
            results["berth %s no-op" % label] = []
        if "podman" not in args.skip:
            results["podman"] = []
        if "umoci" not in args.skip:
            results["skopeo_umoci"] = []
        before = benchlib.load()
        for i in range(args.runs):
            d = os.path.join(work, "run%d" % i)
            os.makedirs(d)
            for label, py in pys.items():
                for tag, tree in trees:
                    settle()
                    c = children_cpu()
                    t = time.perf_counter()
                    out = subprocess.run([py, "-c", PULL_SCRIPT % {
                        "root": tree, "data": os.path.join(d, "berth-%s%s" % (label, tag.strip())),
                        "name": name}], check=True, stdout=subprocess.PIPE).stdout
                    wall = time.perf_counter() - t
                    CPU.setdefault("berth %s%s" % (label, tag), []).append(children_cpu() - c)
                    r = json.loads(out.decode())
                    results["berth %s%s" % (label, tag)].append(r["cold"])
                    if tag:
                        continue
                    results["berth %s process" % label].append(wall - r["noop"])
                    results["berth %s no-op" % label].append(r["noop"])
                    for k, v in r["phases"].items():
                        phases.setdefault((label, k), []).append(v)
            results["floor"].append(floor(urls, os.path.join(d, "floor")))
            if "podman" not in args.skip:
                results["podman"].append(timed(cpu_key="podman", cmd=[
                    "podman", "--root", os.path.join(d, "podman"), "--runroot", os.path.join(d, "podman-run"),
                    "--storage-driver", "overlay", "pull", "-q", "--tls-verify=false", name + ":1"]))
                subprocess.run(["podman", "--root", os.path.join(d, "podman"), "--runroot",
                                os.path.join(d, "podman-run"), "--storage-driver", "overlay", "system",
                                "reset", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if "umoci" not in args.skip:
                oci = os.path.join(d, "oci")
                t = timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://%s:1" % name,
                           "oci:%s:1" % oci])
                t += timed(["umoci", "unpack", "--image", oci + ":1", os.path.join(d, "bundle")])
                results["skopeo_umoci"].append(t)
            benchlib.umount_under(d)
            shutil.rmtree(d, ignore_errors=True)
        after = benchlib.load()
        med = {k: statistics.median(v) for k, v in results.items()}
        print("cold pull of %s (%d gzip layers, %.0f MB in the registry), median of %d (s); %s before, "
              "%s after"
              % (name, len(urls), size / 1e6, args.runs, before, after))
        print("  %-28s %7s %8s" % ("", "wall", "CPU"))
        for k, v in med.items():
            line = "  %-28s %7.2f %8s" % (k, v, "%.2f" % statistics.median(CPU[k]) if k in CPU else "")
            if k.startswith("berth") and "no-op" not in k:
                if "podman" in med:
                    line += "   /podman %.2fx (target <= 0.35x)" % (v / med["podman"])
                line += "   /floor %.2fx (target <= 1.3x)" % (v / med["floor"])
                if k in CPU:
                    cpu = statistics.median(CPU[k]) / statistics.median(CPU["floor"])
                    line += "   CPU/floor's %.2fx" % cpu
            elif k.endswith("no-op"):
                line = "  %-28s %7.1f ms (target < 150 ms)" % (k, v * 1000)
            print(line)
        print("berth's phases, median seconds summed over the layers (downloads overlap each other and "
              "the unpacks):")
        for (label, k), v in sorted(phases.items()):
            print("  python %-4s %-58s %6.2f" % (label, k, statistics.median(v)))
        if "parts" not in args.skip:
            pdir = os.path.join(work, "parts")
            os.makedirs(pdir)
            print("each part alone on the same blobs (s, machine's python; %s):" % benchlib.load())
            for k, v in parts(urls, pdir).items():
                print("  %-58s %6.2f" % (k, v))
            shutil.rmtree(pdir, ignore_errors=True)
        if "noop" not in args.skip:
            noop = noop_through_berthd(work, name)
            print("no-op re-pull: berthd API %.1f ms, docker pull %.1f ms (median of 7)" % (
                benchlib.ms(noop["berthd_api_noop"]), benchlib.ms(noop["docker_cli_noop"])))
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
