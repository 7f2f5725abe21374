#!/usr/bin/env python3
"""A published port whose container is replaced again and again: how many first connections
to the new container wait for a TCP retransmission. Each round attaches a container (a
namespace) to the default bridge publishing 18080, connects to it once from an "outside"
namespace, and removes it; the next container gets the released address. berthd forgets the
released address's tracked flows (runtime/network/conntrack.py) and gives the host the new
container's ARP entry at the start; the other arm does neither, as the engine did before; the
two take turns in blocks of 50 rounds in one run. Everything happens in
namespaces this script makes (tests/network/topology.py): the machine's own is never touched.

    sudo .venv/bin/python bench/net_reuse.py [--rounds 300] [--load 3]

--load N runs N busy processes meanwhile (the effect shows on a loaded machine: the old flow's
retransmissions keep the host resolving the address when the next container takes it, and the
new container's first packets wait behind that resolution, up to a second).
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runtime.network import links, netns, service  # noqa: E402
from tests.network.topology import HOST_OUT, OUTSIDE, Topology  # noqa: E402


BLOCK = 50


def spin():
    while True:
        pass


def round_trip(t, svc, joins, i):
    """Attach, connect once (seconds it took), detach."""
    ctr = t.ns()
    cid = "%064x" % i
    netns.run_in(t.host, svc.attach, cid, "/web%d" % i, ctr, joins,
                 {"PortBindings": {"80/tcp": [{"HostPort": "18080"}]}}, {"80/tcp": {}})
    t.tcp_server(ctr, 80, "web")
    start = time.time()
    answer = t.tcp(t.outside, HOST_OUT, 18080, timeout=5)
    took = time.time() - start
    netns.run_in(t.host, svc.detach, cid, False)
    t.servers.pop().close()
    os.close(ctr)
    t.fds.remove(ctr)
    if answer is None:
        raise SystemExit("round %d: no answer from the published port" % i)
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=300, help="rounds per arm")
    ap.add_argument("--load", type=int, default=3, help="busy processes meanwhile")
    args = ap.parse_args()
    hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.load)]
    for h in hogs:
        h.start()
    forget, neighbour = service._forget_flows, links.set_neighbour
    arms = {"berthd": (forget, neighbour),
            "before": (lambda addresses: None, lambda conn, index, ip, mac: None)}
    took = {name: [] for name in arms}
    t = Topology()
    try:
        with tempfile.TemporaryDirectory() as root:
            svc = netns.run_in(t.host, service.NetworkService, root, {"dns": [OUTSIDE]})
            try:
                netns.run_in(t.host, svc.ensure)
                joins = svc.resolve_networks("default", None)
                n = 0
                for _ in range(0, args.rounds, BLOCK):  # in blocks: a round inherits the last one's flows
                    for name, (service._forget_flows, links.set_neighbour) in arms.items():
                        for k in range(BLOCK + 1):
                            n += 1
                            took_ms = round_trip(t, svc, joins, n)
                            if k:  # (the first inherits the other arm's flows)
                                took[name].append(took_ms)
            finally:
                service._forget_flows, links.set_neighbour = forget, neighbour
                netns.run_in(t.host, svc.close)
    finally:
        t.close()
        for h in hogs:
            h.terminate()
    print("%d rounds per arm, %d busy processes" % (args.rounds, args.load))
    for name, xs in took.items():
        xs.sort()
        slow = sum(x >= 0.5 for x in xs)
        print("  %-8s first connection waited >= 0.5 s: %3d (%.1f %%); median %.1f ms, max %.0f ms"
              % (name, slow, 100.0 * slow / len(xs), xs[len(xs) // 2] * 1e3, xs[-1] * 1e3))


if __name__ == "__main__":
    main()
