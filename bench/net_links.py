#!/usr/bin/env python3
"""A container's link setup on a bridge, the two ways the engine could do it, in one run:
rtnetlink requests from the daemon's process (runtime/network/links.py) and the `ip` tool
(`ip link add ... type veth peer ... netns`, then `nsenter --net ... ip -batch` for the
address, link up and default route). Each iteration sets up one namespace's eth0 on a bridge
and is timed from the request to a usable default route; the namespaces are made beforehand
(not timed, the same for both) and the two ways take turns. Everything happens inside a
network namespace this script makes: the machine's own is never touched.

    sudo .venv/bin/python bench/net_links.py [--runs 30]
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


if __name__ == "__main__":
    main()
