#!/usr/bin/env python3
"""Pull benchmark: a Debian-sized image (bookworm rootfs split into 4 gzip layers) from a
loopback docker-registry into an empty store, with berth, `podman pull`, and `skopeo copy` +
`umoci unpack`, in one invocation; plus berth's no-op re-pull. Prints medians and ratios.
`berth` is the engine's image_pull as the daemon runs it; `berth_process` is the wall time of
a fresh Python process doing the same (interpreter start and imports included).

    sudo .venv/bin/python bench/pull.py [--runs 3]

Targets: berth cold pull <= 0.6x podman pull; no-op re-pull < 150 ms.
Each tool runs in a fresh storage dir; deleting trees happens outside the timed part.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

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

PULL_SCRIPT = """
import sys, time
sys.path.insert(0, %(root)r)
from tests.registry.conftest import make_registry_engine
engine = make_registry_engine(%(data)r)
t = time.perf_counter()
engine.image_pull(%(name)r, "1")
first = time.perf_counter() - t
t = time.perf_counter()
engine.image_pull(%(name)r, "1")
print(first, time.perf_counter() - t)
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


def timed(cmd, **kw):
    """Wall time of a command that must succeed (after settle())."""
    settle()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    return time.perf_counter() - t


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    archive = build_archive()
    work = tempfile.mkdtemp(prefix="berth-bench-pull-")
    reg = Registry(os.path.join(work, "registry")).start()
    try:
        skopeo_copy("docker-archive:" + archive, "docker://%s/bench/debian:1" % reg.host)
        name = "%s/bench/debian" % reg.host
        blobs = os.path.join(reg.storage, "docker/registry/v2/blobs")
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(blobs) for f in fs)
        results = {"berth": [], "berth_process": [], "berth_noop": [], "podman": [], "skopeo_umoci": []}
        for i in range(args.runs):
            d = os.path.join(work, "run%d" % i)
            os.makedirs(d)
            settle()
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", PULL_SCRIPT % {
                "root": ROOT, "data": os.path.join(d, "berth"), "name": name}],
                check=True, stdout=subprocess.PIPE).stdout.split()
            # whole process (interpreter start, imports) minus the timed no-op re-pull
            results["berth_process"].append(time.perf_counter() - t - float(out[1]))
            results["berth"].append(float(out[0]))
            results["berth_noop"].append(float(out[1]))
            results["podman"].append(timed([
                "podman", "--root", os.path.join(d, "podman"), "--runroot", os.path.join(d, "podman-run"),
                "--storage-driver", "overlay", "pull", "-q", "--tls-verify=false", name + ":1"]))
            oci = os.path.join(d, "oci")
            t = timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://%s:1" % name,
                       "oci:%s:1" % oci])
            t += timed(["umoci", "unpack", "--image", oci + ":1", os.path.join(d, "bundle")])
            results["skopeo_umoci"].append(t)
            subprocess.run(["podman", "--root", os.path.join(d, "podman"), "--runroot",
                            os.path.join(d, "podman-run"), "--storage-driver", "overlay", "system",
                            "reset", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(d, ignore_errors=True)
        results.update(noop_through_berthd(work, name))
        med = {k: statistics.median(v) for k, v in results.items()}
        report = {
            "image": {"registry_bytes": size, "layers": len(LAYERS)},
            "runs": args.runs,
            "seconds": {k: [round(x, 3) for x in v] for k, v in results.items()},
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "berth_vs_podman": round(med["berth"] / med["podman"], 3),
            "berth_process_vs_podman": round(med["berth_process"] / med["podman"], 3),
            "berth_vs_skopeo_umoci": round(med["berth"] / med["skopeo_umoci"], 3),
            "noop_repull_ms": round(med["berth_noop"] * 1000, 1),
            "noop_repull_api_ms": round(med["berthd_api_noop"] * 1000, 1),
            "noop_repull_docker_cli_ms": round(med["docker_cli_noop"] * 1000, 1),
            "targets": {"cold <= 0.6x podman": med["berth"] / med["podman"] <= 0.6,
                        "no-op re-pull < 150 ms": med["berth_noop"] < 0.150},
        }
        print(json.dumps(report, indent=2))
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
