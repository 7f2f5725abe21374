"""Network namespaces for tests: a 'host' (where the engine's bridges and rules go), an 'outside'
host joined to it by a veth, and 'containers' on the host's bridges. Nothing touches the
machine's own namespace; closing the fds (and ending the servers) removes everything."""

import os
import socket
import threading

from runtime.network import links, netns
from runtime.network import netlink as nl

HOST_OUT, OUTSIDE = "192.0.2.1", "192.0.2.2"


def write_sysctl(ns_fd, path, value):
    def w():
        with open(path, "w") as f:
            f.write(value)
    netns.run_in(ns_fd, w)


def conn(ns_fd):
    return nl.Netlink(netns.socket_in(ns_fd, socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ROUTE))


class Topology(object):
    def __init__(self):
        self.fds = []
        self.servers = []
        self.host = self.ns()
        self.outside = self.ns()
        with conn(self.host) as c:
            links.add_veth(c, "out0", "eth0", self.outside)
            links.add_address(c, links.link_index(c, "out0"), HOST_OUT + "/24")
        with conn(self.outside) as c:
            i = links.link_index(c, "eth0")
            links.add_address(c, i, OUTSIDE + "/24")
            links.set_up(c, i)
        write_sysctl(self.host, "/proc/sys/net/ipv4/ip_forward", "1")

    def ns(self):
        fd = netns.create()
        self.fds.append(fd)
        return fd

    def bridge(self, name, cidr):
        with conn(self.host) as c:
            index = links.add_bridge(c, name)
            links.add_address(c, index, cidr)
        write_sysctl(self.host, "/proc/sys/net/ipv4/conf/%s/route_localnet" % name, "1")

    def container(self, bridge, cidr, gateway, host_veth):
        fd = self.ns()
        ip = cidr.split("/")[0]
        with conn(self.host) as c:
            links.add_veth(c, host_veth, "eth0", fd, master=links.link_index(c, bridge),
                           peer_mac=links.mac_for(ip))
            links.set_hairpin(c, links.link_index(c, host_veth))
        with conn(fd) as c:
            i = links.link_index(c, "eth0")
            links.add_address(c, i, cidr)
            links.set_up(c, i)
            links.add_default_route(c, gateway, i)
        return fd

    def tcp_server(self, ns_fd, port, tag):
        """Answers each connection with 'tag peer-address'."""
        s = netns.socket_in(ns_fd, socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(16)
        self.servers.append(s)

        def loop():
            while True:
                try:
                    c, peer = s.accept()
                except OSError:
                    return
                c.sendall(("%s %s" % (tag, peer[0])).encode())
                c.close()
        threading.Thread(target=loop, daemon=True).start()

    def udp_server(self, ns_fd, port, tag):
        s = netns.socket_in(ns_fd, socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        self.servers.append(s)

        def loop():
            while True:
                try:
                    data, peer = s.recvfrom(512)
                    if peer is None:  # shut down
                        return
                    s.sendto(("%s %s" % (tag, peer[0])).encode(), peer)
                except OSError:
                    return
        threading.Thread(target=loop, daemon=True).start()

    def tcp(self, ns_fd, ip, port, timeout=3.0):
        """What a TCP server at ip:port says to a client in ns_fd, or None if unreachable.
        The timeout lets a lost first SYN be retried (at 1 s): reachable is what is asserted,
        not that no packet is ever lost on a loaded machine."""
        s = netns.socket_in(ns_fd, socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((ip, port))
            return s.recv(200).decode()
        except OSError:
            return None
        finally:
            s.close()

    def blocked(self, ns_fd, ip, port):
        """Nothing answers a TCP client in ns_fd at ip:port within 1 s."""
        return self.tcp(ns_fd, ip, port, timeout=1.0) is None

    def udp(self, ns_fd, ip, port, timeout=1.0):
        s = netns.socket_in(ns_fd, socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(b"?", (ip, port))
            return s.recv(200).decode()
        except OSError:
            return None
        finally:
            s.close()

    def close(self):
        for s in self.servers:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for fd in self.fds:
            os.close(fd)
