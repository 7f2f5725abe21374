"""How long `python -m tests.lab up N` takes with the base rootfs cached (target: N=5 < 30 s).

Run as root from the repo root:  python bench/lab_up.py [--n 5] [--rounds 3]
Each round times the real CLI in a subprocess (`up N`, until every sshd answers) and its
`down`, next to a peer run of `up 1` in the same invocation, and prints the figures and the
N-host / 1-host ratio (how well parallel boot scales on this machine).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab import rootfs  # noqa: E402


def cli(*args) -> tuple:
    """Run `python -m tests.lab ARGS`; return (seconds, stdout)."""
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "tests.lab", *args], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if p.returncode != 0:
        sys.exit(f"python -m tests.lab {' '.join(args)} failed: {p.stderr}")
    return time.monotonic() - t, p.stdout


def up_down(n: int) -> tuple:
    """Time one `up n` and its `down`; return (up seconds, down seconds)."""
    t_up, out = cli("up", str(n))
    hosts = [json.loads(line) for line in out.splitlines()]
    assert len(hosts) == n, out
    t_down, _ = cli("down", "--lab", hosts[0]["lab"])
    return t_up, t_down


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    t = time.monotonic()
    base = rootfs.ensure_base()
    print(f"base rootfs {base} ready in {time.monotonic() - t:.1f} s (cached after the first build)")
    ups, downs, ones = [], [], []
    for r in range(args.rounds):
        one, _ = up_down(1)
        up, down = up_down(args.n)
        ones.append(one)
        ups.append(up)
        downs.append(down)
        print(f"round {r + 1}: up 1 {one:.2f} s | up {args.n} {up:.2f} s | down {args.n} {down:.2f} s")
    med_up, med_one = statistics.median(ups), statistics.median(ones)
    print(f"median: up {args.n} = {med_up:.2f} s (target < 30 s), up 1 = {med_one:.2f} s, "
          f"down {args.n} = {statistics.median(downs):.2f} s, "
          f"ratio up {args.n}/up 1 = {med_up / med_one:.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f} (2 cores; other runs share the machine)")


if __name__ == "__main__":
    main()
