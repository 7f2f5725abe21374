"""Where a fleet rerun's time goes: `provision host --no-install` on N light lab hosts (the
bench/provision_fleet.py invocation, without the peers), one first run, then reruns that
alternate between source trees (A/B: the same hosts, the same invocation), each with:

- wall seconds, from the command's start to its exit;
- the controller's CPU seconds (user + system of the provision process);
- the hosts' CPU seconds: every host's sshd (PID 1 of the light host) and everything it ran
  for the run (the SSH sessions, the facts script and its commands), from /proc;
- the per-host phases of the report (connect, facts, plan, apply), when the tree reports them.

Usage (root, from the project's venv):
    .venv/bin/python bench/provision_rerun.py [--hosts 10] [--runs 3] [--tree DIR ...]
        [--forks N] [--import-only] [--pyspy FILE]

``--tree DIR`` (repeatable, default this checkout) is a source tree holding ``provision/``
(e.g. ``git archive COMMIT | tar -x -C DIR``); ``--pyspy FILE`` records the first tree's last
rerun with py-spy (all threads, collapsed stacks) into FILE.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.light import LightFleet  # noqa: E402
from tests.lab.sysutil import children  # noqa: E402
from tests.provision.labutil import build_apt_repo  # noqa: E402

PORT = 8732
TICK = os.sysconf("SC_CLK_TCK")


def host_cpu(fleet) -> float:
    """CPU seconds of every host's PID 1 (sshd) and its reaped descendants so far."""
    total = 0
    for h in fleet.hosts:
        for pid in children(h.proc.pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def run_once(fleet, tree, argv, pyspy=None):
    """One provision run from ``tree``: (wall s, controller CPU s, hosts' CPU s, report)."""
    cmd = [sys.executable, "-c", "from provision.cli import main; main()", *argv]
    if pyspy:
        cmd = [str(pathlib.Path(sys.executable).parent / "py-spy"), "record", "--threads",
               "-r", "200", "-f", "raw", "-o", pyspy, "--", *cmd]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    h0 = host_cpu(fleet)
    t0 = time.monotonic()
    p = fleet.exec(cmd, check=False, cwd=tree)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        sys.exit(f"provision from {tree} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    out = p.stdout[p.stdout.find("[") :]  # py-spy's own lines come first
    return wall, cpu, host_cpu(fleet) - h0, json.JSONDecoder().raw_decode(out)[0]


def phases(reports) -> str:
    """Median and max of each phase over the hosts of one run."""
    names = [k for k in (reports[0].get("phases") or {})]
    if not names:
        return "(no phases in this tree's report)"
    out = []
    for k in names + ["seconds"]:
        vals = [r["phases"][k] if k != "seconds" else r["seconds"] for r in reports]
        out.append(f"{k} {statistics.median(vals):.3f}/{max(vals):.3f}")
    return "per host median/max s: " + ", ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="reruns per tree")
    ap.add_argument("--forks", type=int, help="default: none given (each tree's own default)")
    ap.add_argument("--tree", action="append", help="source tree with provision/ (repeatable)")
    ap.add_argument("--pyspy", help="py-spy the first tree's last rerun into this file")
    ap.add_argument("--import-only", action="store_true", help="also time the controller's imports")
    args = ap.parse_args()
    trees = [str(pathlib.Path(t).resolve()) for t in (args.tree or [ROOT])]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="berth-rerun-"))
    t0 = time.monotonic()
    with LightFleet(args.hosts) as fleet:
        print(f"{args.hosts} light hosts up in {time.monotonic() - t0:.1f} s", flush=True)
        mirror = f"http://{fleet.gateway}:{PORT}"
        server = fleet.popen([sys.executable, "-m", "http.server", str(PORT), "--bind", fleet.gateway,
                              "--directory", str(build_apt_repo(tmp / "mirror"))],
                             stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # fmt: skip
        argv = ["host", "--no-install", *[h.ip for h in fleet.hosts], "--mirror", mirror, "--no-gpgcheck",
                "--registry-mirror", "https://registry.example.com", "--gid", "2375", "--user", "tester",
                "-i", fleet.key, "--known-hosts", fleet.known_hosts, "--json"]  # fmt: skip
        argv += ["--forks", str(args.forks)] if args.forks else []
        try:
            time.sleep(0.5)
            wall, cpu, hcpu, reps = run_once(fleet, trees[0], argv)
            changed = sum(r["changed"] for r in reps)
            print(f"first run ({trees[0]}): {wall:.2f} s wall, controller {cpu:.2f} s CPU, "
                  f"hosts {hcpu:.2f} s CPU, {changed} steps changed", flush=True)  # fmt: skip
            rows = {t: [] for t in trees}
            for i in range(args.runs):
                for tree in trees:
                    spy = args.pyspy if args.pyspy and tree == trees[0] and i == args.runs - 1 else None
                    wall, cpu, hcpu, reps = run_once(fleet, tree, argv, spy)
                    changed = sum(r["changed"] for r in reps)
                    rows[tree].append((wall, cpu, hcpu))
                    print(f"rerun {i + 1} {tree}: {wall:.2f} s wall, controller {cpu:.2f} s CPU, hosts "
                          f"{hcpu:.2f} s CPU, changed {changed}; {phases(reps)}", flush=True)  # fmt: skip
            if args.import_only:
                for tree in trees:
                    b = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t1 = time.monotonic()
                    fleet.exec([sys.executable, "-c", "import provision.cli, provision.fleet, provision.ssh, "
                                "provision.facts, provision.plan, provision.report"], cwd=tree)  # fmt: skip
                    a = resource.getrusage(resource.RUSAGE_CHILDREN)
                    print(
                        f"imports only {tree}: {time.monotonic() - t1:.2f} s wall, "
                        f"{a.ru_utime - b.ru_utime + a.ru_stime - b.ru_stime:.2f} s CPU"
                    )
        finally:
            server.terminate()
            server.wait()
    print(f"\nload average at the end: {open('/proc/loadavg').read().split()[:3]}")
    print(
        f"| tree ({args.hosts} hosts, {args.runs} reruns) | wall s (median) | controller CPU s "
        "| hosts CPU s |"
    )
    print("|---|---|---|---|")
    for tree, r in rows.items():
        med = [statistics.median(x[k] for x in r) for k in range(3)]
        print(f"| {tree} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} |")
    os.system(f"rm -rf {tmp}")


if __name__ == "__main__":
    main()
