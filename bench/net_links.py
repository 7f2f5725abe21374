#!/usr/bin/env python3
"""A container's link setup on a bridge, the two ways the engine could do it, in one run:
rtnetlink requests from the daemon's process (runtime/network/links.py) and the `ip` tool
(`ip link add ... type veth peer ... netns`, then `nsenter --net ... ip -batch` for the
address, link up and default route). Each iteration sets up one namespace's eth0 on a bridge
and is timed from the request to a usable default route; the namespaces are made beforehand
(not timed, the same for both) and the two ways take turns. Everything happens inside a
network namespace this script makes: the machine's own is never touched.

    sudo .venv/bin/python bench/net_links.py [--runs 30]

Then the network part of a bridged container's start as the engine does it (NetworkService in
that namespace: take the namespace made ahead, attach it to the default bridge, release it at
exit), two ways in turns: the next spare namespace made from the moment this one is taken
(concurrently with the wiring), or after the wiring. Wall time and the calling thread's CPU.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from runtime.network import links, netns  # noqa: E402
from runtime.network import netlink as nl  # noqa: E402
from runtime.network.service import NetworkService  # noqa: E402


def conn(fd):
    return nl.Netlink(netns.socket_in(fd, socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ROUTE))


def with_netlink(host, ctr, i, bridge):
    ip = "10.88.%d.%d" % (i // 250, i % 250 + 2)
    with conn(host) as c:
        links.add_veth(c, "vn%d" % i, "eth0", ctr, master=bridge, peer_mac=links.mac_for(ip))
    with conn(ctr) as c:
        idx = links.link_index(c, "eth0")
        links.add_address(c, idx, ip + "/16")
        links.set_up(c, idx)
        links.add_default_route(c, "10.88.0.1", idx)


def with_ip(host, ctr, i, bridge_name):
    ip = "10.89.%d.%d" % (i // 250, i % 250 + 2)
    path = "/proc/%d/fd/%d" % (os.getpid(), ctr)
    subprocess.check_call(["ip", "link", "add", "vi%d" % i, "master", bridge_name, "up", "type", "veth",
                           "peer", "name", "eth0", "address", links.mac_for(ip), "netns", path],
                          pass_fds=[ctr])
    batch = "addr add %s/16 dev eth0\nlink set eth0 up\nroute add default via 10.89.0.1\n" % ip
    p = subprocess.Popen(["nsenter", "--net=" + path, "ip", "-batch", "-"], stdin=subprocess.PIPE,
                         pass_fds=[ctr])
    p.communicate(batch.encode())
    if p.returncode:
        raise RuntimeError("ip -batch failed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    host = netns.create()
    times = {"netlink": [], "ip": []}
    fds = []

    def body():
        with conn(host) as c:
            b1 = links.add_bridge(c, "bn0")
            links.add_address(c, b1, "10.88.0.1/16")
            b2 = links.add_bridge(c, "bi0")
            links.add_address(c, b2, "10.89.0.1/16")
        for i in range(args.runs + 2):
            for name in ("netlink", "ip"):
                ctr = netns.create()
                fds.append(ctr)
                t = time.perf_counter()
                if name == "netlink":
                    with_netlink(host, ctr, i, b1)
                else:
                    with_ip(host, ctr, i, "bi0")
                if i >= 2:  # warm-up
                    times[name].append((time.perf_counter() - t) * 1000)
    try:
        netns.run_in(host, body)
    finally:
        for fd in fds + [host]:
            os.close(fd)
    a, b = statistics.median(times["netlink"]), statistics.median(times["ip"])
    print("veth into a namespace + address + up + default route, median of %d:" % args.runs)
    print("  rtnetlink from the process: %.2f ms" % a)
    print("  ip + nsenter ip -batch:     %.2f ms  (netlink/ip = %.2fx)" % (b, a / b))
    start_path(args.runs)


def start_path(runs):
    """The network part of a bridged start, with the spare made concurrently or after."""
    import shutil
    import tempfile
    host = netns.create()
    root = tempfile.mkdtemp(prefix="berth-bench-netlinks-")
    svc = netns.run_in(host, NetworkService, root, {"dns": ["192.0.2.53"]})
    times = {"spare made while wiring": ([], []), "spare made after wiring": ([], [])}

    def one(i, early):
        cid = "%064x" % i
        time.sleep(0.05)  # the gap between two runs: the spare is ready
        w, c = time.perf_counter(), time.thread_time()
        fd, veth = svc.take_netns()
        if early:
            svc.spare_later()
        svc.attach(cid, "/c%d" % i, fd, svc.resolve_networks("default", None), {}, {}, veth)
        if not early:
            svc.spare_later()
        wall, cpu = time.perf_counter() - w, time.thread_time() - c
        os.close(fd)
        svc.detach(cid, exited=True)
        return wall * 1000, cpu * 1000

    def body():
        svc.ensure()
        for i in range(runs + 2):
            for k, (name, (walls, cpus)) in enumerate(sorted(times.items())):
                wall, cpu = one(2 * i + k, name.endswith("while wiring"))
                if i >= 2:
                    walls.append(wall)
                    cpus.append(cpu)
    try:
        netns.run_in(host, body)
    finally:
        netns.run_in(host, svc.close)
        os.close(host)
        shutil.rmtree(root, ignore_errors=True)
    print("network part of a bridged start (namespace taken, veth onto the bridge, address, route,"
          " endpoint file), median of %d:" % runs)
    for name, (walls, cpus) in sorted(times.items()):
        print("  %-26s %6.2f ms wall, %5.2f ms CPU of the starting thread"
              % (name, statistics.median(walls), statistics.median(cpus)))


if __name__ == "__main__":
    main()
