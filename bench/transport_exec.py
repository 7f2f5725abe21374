"""Benchmark: the cost of one short command through provision's transport against Invoke's runner
(what Fabric's ``Connection.run`` and Invoke's ``Context.run`` share), in one run, as a ratio.

provision runs dozens of short commands per host; this is why ssh.py drives Paramiko channels
itself instead of running them through Fabric/Invoke. Both sides run ``sh -c`` locally, so the
figures are the runner's own overhead (Invoke's remote runner polls the same way).

Usage: python bench/transport_exec.py [-n 50]   (needs `pip install invoke`)
"""

import argparse
import io
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.transport import LocalTransport  # noqa: E402

PASSWORD = "password12\n"  # what a sudo password on stdin looks like


def per_command(run, n):
    """Median milliseconds of n calls of run()."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="commands per measurement")
    args = ap.parse_args()
    try:
        from invoke import Config, Context
    except ImportError:
        sys.exit("transport_exec.py: needs invoke (pip install invoke)")
    ctx = Context(Config(overrides={"run": {"shell": "/bin/sh"}}))
    t = LocalTransport()

    def ours_stdin():
        t._exec("cat >/dev/null", PASSWORD.encode(), 60)

    rows = [
        ("true", lambda: t._exec("true", None, 60),
         lambda: ctx.run("true", hide=True, warn=True, in_stream=io.StringIO(""))),
        (f"cat <{len(PASSWORD)}-byte stdin>", ours_stdin,
         lambda: ctx.run("cat >/dev/null", hide=True, warn=True, in_stream=io.StringIO(PASSWORD))),
    ]  # fmt: skip
    print(f"{'command':<22} {'provision ms':>12} {'invoke ms':>10} {'ratio':>7}   (median of {args.n})")
    for name, ours, theirs in rows:
        a, b = per_command(ours, args.n), per_command(theirs, args.n)
        print(f"{name:<22} {a:>12.2f} {b:>10.2f} {b / a:>6.1f}x")


if __name__ == "__main__":
    main()
