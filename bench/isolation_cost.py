#!/usr/bin/env python3
"""What seccomp and the device rules cost on the start path: create + start + wait + rm of
`true` in busybox with berth's engine as it starts containers (dockerd's seccomp profile, the
device rules) and with neither (`--privileged`: no filter, no device rules), beside `crun run`
of the same rootfs without and with dockerd's profile in its config.json (crun compiles it
with libseccomp on every start), all taking turns in one loop. Prints medians and the
differences.

    sudo .venv/bin/python bench/isolation_cost.py [--runs 50] [--cgroup2] [--nice -20]
    sudo .venv/bin/python bench/isolation_cost.py --parts     # the steps alone

--cgroup2: the loop runs in a private mount namespace whose /sys/fs/cgroup is this machine's
cgroup2 hierarchy (empty of controllers here), so berth's device rules are the eBPF program
it loads and attaches per container (crun is skipped there: it raises RLIMIT_MEMLOCK for its
own program, which root on this machine may not). Without it, berth uses the
v1 devices controller and crun (which refuses the hybrid layout) runs with
/sys/fs/cgroup/unified unmounted, as in bench/container_start.py.

Target (issue 17): seccomp + device program at most +2 ms over berth without them, and not
more than crun's own cost for them.
"""

import argparse
import binascii
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

from bench.container_start import WARM_UP, Berth, Command, bundle, ms  # noqa: E402
from runtime.container import seccomp  # noqa: E402
from runtime.container.proc import cgroups, devices, devices_bpf, init  # noqa: E402
from runtime.container.proc import seccomp as proc_seccomp  # noqa: E402
from runtime.container.proc import syscalls as sc  # noqa: E402
from runtime.container.seccomp import bpf  # noqa: E402
from runtime.container.seccomp.default_profile import PROFILE  # noqa: E402
from tests import imagefactory  # noqa: E402


def oci_seccomp(caps):
    """dockerd's default profile as an OCI linux.seccomp section for a process holding caps
    (what dockerd hands runc: the includes/excludes already resolved)."""
    arch = bpf.native_arch()
    go_arch, kernel = bpf.GO_NAMES[arch], bpf.kernel_version()
    calls = []
    for entry in PROFILE["syscalls"]:
        if bpf._applies(entry, caps, go_arch, kernel):
            call = {"names": entry["names"], "action": entry["action"]}
            if entry.get("errnoRet") is not None:
                call["errnoRet"] = entry["errnoRet"]
            if entry.get("args"):
                call["args"] = entry["args"]
            calls.append(call)
    arches = [bpf.SCMP_NAMES[arch]] + [bpf.SCMP_NAMES[a] for a in bpf.SUB_ARCHES[arch]]
    return {"defaultAction": PROFILE["defaultAction"], "defaultErrnoRet": PROFILE["defaultErrnoRet"],
            "architectures": arches, "syscalls": calls}


def seccomp_bundle(tmp, plain):
    """A copy of the crun bundle's config with dockerd's profile (sharing the rootfs)."""
    b = os.path.join(tmp, "bundle-seccomp")
    os.makedirs(b)
    os.symlink(os.path.join(plain, "rootfs"), os.path.join(b, "rootfs"))
    with open(os.path.join(plain, "config.json")) as f:
        cfg = json.load(f)
    cfg["linux"]["seccomp"] = oci_seccomp({"CAP_" + c for c in init.DEFAULT_CAPS})
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    return b


def _in_child(fn):
    """Seconds fn() takes in a freshly forked child with no_new_privs set (as PID 1 runs it)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            t = time.perf_counter()
            fn()
            os.write(w, repr(time.perf_counter() - t).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    return float(data)


def parts(n=200):
    """Medians of the start path's own steps, which a loaded machine blurs less than the loop:
    PID 1's seccomp install (the filter cached, base64 in the spec), the monitor's attach of
    the preloaded device program to a fresh cgroup2 directory, and berthd's cache lookup."""
    caps = ["CAP_" + c for c in init.DEFAULT_CAPS]
    t = time.perf_counter()
    b64 = seccomp.program_b64(seccomp.BUILTIN, caps)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(n):
        seccomp.program_b64(seccomp.BUILTIN, caps)
    hit = (time.perf_counter() - t) / n
    empty = statistics.median(_in_child(lambda: None) for _ in range(n))
    install = statistics.median(_in_child(lambda: proc_seccomp.install_b64(b64)) for _ in range(n))
    insns = len(binascii.a2b_base64(b64)) // 8
    print("seccomp: compile %.2f ms once, then %.1f us per start (cache); install in PID 1 %.3f ms "
          "(%d instructions)" % (first * 1000, hit * 1e6, (install - empty) * 1000, insns))
    base = "/sys/fs/cgroup/unified"
    if not os.path.exists(base + "/cgroup.controllers"):
        base = "/sys/fs/cgroup" if cgroups.detect_version() == 2 else None
    if base is None:
        return
    program = devices_bpf.compile_rules(tuple(cgroups.DEVICE_RULES))
    t = time.perf_counter()
    fd = devices.load_program(program)
    load = time.perf_counter() - t
    top = "%s/berth-iso-bench-%d" % (base, os.getpid())
    os.mkdir(top)
    times = []
    try:
        for i in range(n // 4):
            d = "%s/c%d" % (top, i)
            os.mkdir(d)
            t = time.perf_counter()
            devices.attach_fd(d, fd)
            times.append(time.perf_counter() - t)
            os.rmdir(d)
            time.sleep(0.01)
    finally:
        os.close(fd)
        os.rmdir(top)
    print("device program: load %.3f ms (once, in the forkserver), attach %.3f ms per start"
          % (load * 1000, statistics.median(times) * 1000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--cgroup2", action="store_true", help="run on the cgroup2 hierarchy")
    ap.add_argument("--skip", action="append", default=[], help="crun")
    ap.add_argument("--parts", action="store_true", help="only time the steps (install, attach)")
    ap.add_argument("--nice", type=int, default=0, metavar="N",
                    help="run everything (children inherit it) at this nice value, e.g. -20")
    args = ap.parse_args()
    if args.nice:
        os.nice(args.nice)
    if args.parts:
        return parts()
    if os.environ.get("BERTH_BENCH_NS") != "1":  # re-run in a private mount namespace
        os.environ["BERTH_BENCH_NS"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "--", sys.executable] + sys.argv)
    if args.cgroup2:
        subprocess.run(["mount", "--bind", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"], check=True)
        if "crun" not in args.skip:  # it raises RLIMIT_MEMLOCK for its eBPF, which root here cannot
            print("(crun skipped on cgroup2: setrlimit RLIMIT_MEMLOCK needs CAP_SYS_RESOURCE, which root "
                  "lacks on this machine)")
            args.skip.append("crun")
    elif os.path.ismount("/sys/fs/cgroup/unified"):
        subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)
    tmp = tempfile.mkdtemp(prefix="berth-iso-", dir="/tmp")
    tools = []
    try:
        archive = str(imagefactory.busybox_image_tar(os.path.join(tmp, "bb.tar")))
        on = Berth(tmp + "/on", archive, name="berth (seccomp + devices)")
        off = Berth(tmp + "/off", archive, {"Privileged": True}, name="berth --privileged (neither)")
        no_seccomp = Berth(tmp + "/nosec", archive, {"SecurityOpt": ["seccomp=unconfined"]},
                           name="berth seccomp=unconfined")
        tools = [on, no_seccomp, off]
        if "crun" not in args.skip:
            plain = bundle(tmp)
            tools.append(Command("crun run (no seccomp)", ["crun", "run", "--bundle", plain,
                                                           "ic-%d-{i}" % os.getpid()]))
            tools.append(Command("crun run + dockerd's seccomp", [
                "crun", "run", "--bundle", seccomp_bundle(tmp, plain), "is-%d-{i}" % os.getpid()]))
        times = {t.name: [] for t in tools}
        for i in range(WARM_UP + args.runs):
            for t in tools:
                dt = t.once(i >= WARM_UP)
                if i >= WARM_UP:
                    times[t.name].append(dt)
        layout = "cgroup v2 (device eBPF program)" if args.cgroup2 else "cgroup v1 (devices controller)"
        print("create+start+wait+rm of `true`, median ms of %d, taking turns; %s:" % (args.runs, layout))
        for t in tools:
            print("  %-34s %7.2f" % (t.name, ms(times[t.name])))
        print("berth: seccomp + devices cost %+.2f ms (seccomp alone %+.2f ms)" % (
            ms(times[on.name]) - ms(times[off.name]), ms(times[on.name]) - ms(times[no_seccomp.name])))
        print("    start phase: %.2f, %.2f without seccomp, %.2f without either" % (
            ms(on.phases["start"]), ms(no_seccomp.phases["start"]), ms(off.phases["start"])))
        if "crun" not in args.skip:
            print("crun: its seccomp costs %+.2f ms" % (ms(times["crun run + dockerd's seccomp"])
                                                        - ms(times["crun run (no seccomp)"])))
    finally:
        for t in tools:
            if isinstance(t, Berth):
                t.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
