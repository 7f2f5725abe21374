"""Command line: `python -m tests.lab up N [--nested] [--flavour el7] [--lab ID]`,
`python -m tests.lab down [--lab ID]`, `python -m tests.lab list`.

`up` prints one JSON object per host per line (name, ip, user, key, port, lab, known_hosts,
...) once every sshd answers; the hosts keep running after it returns. `down` removes every
lab on the machine (or only --lab ID), including labs other processes brought up.
"""

import argparse
import json
import sys

from .lab import Lab, down_all
from .state import all_labs
from .sysutil import LabError


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m tests.lab", description="berth test lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="boot N hosts and print them as JSON lines")
    up.add_argument("n", type=int)
    up.add_argument("--nested", action="store_true", help="ready to run a container engine inside")
    up.add_argument("--flavour", choices=["debian", "el7"], default="debian")
    up.add_argument("--lab", help="add the hosts to this existing lab id")
    down = sub.add_parser("down", help="remove every lab (or just --lab ID)")
    down.add_argument("--lab")
    sub.add_parser("list", help="show labs and their hosts as JSON lines")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            if args.n < 1:
                ap.error("N must be at least 1")
            lab = Lab(args.lab)
            fresh = not lab.state.exists()
            try:
                hosts = lab.up(args.n, nested=args.nested, flavour=args.flavour)
            except BaseException:
                if fresh:
                    lab.down()
                raise
            for h in hosts:
                print(json.dumps(h.as_dict()), flush=True)
        elif args.cmd == "down":
            if args.lab:
                Lab(args.lab).down()
            else:
                down_all()
        else:
            for lab_id in all_labs():
                for h in Lab(lab_id).hosts():
                    print(json.dumps(h.as_dict()))
    except LabError as e:
        print(f"tests.lab: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
