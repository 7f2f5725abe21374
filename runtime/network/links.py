"""Bridges, veth pairs, addresses and routes, made over rtnetlink (netlink.Netlink).

Measured against `ip` (bench/net_links.py): one veth into a namespace with its address and
default route is four netlink requests from the daemon's process, where `ip` costs a fork and
exec per step."""

import ipaddress
import socket
import struct
import time

from runtime.errors import InvalidParameter
from runtime.network import netlink as nl

_IFINFO_SIZE = 16
MAC_HELP = "give six hex octets such as 02:42:ac:11:00:02"


def link_index(conn, name):
    """The ifindex of link `name`, or None."""
    try:
        payloads = _get_link(conn, name)
    except OSError as e:
        if nl.is_missing(e):
            return None
        raise
    return struct.unpack_from("=BxHiII", payloads)[2]


def _get_link(conn, name):
    seq = conn._send(nl.RTM_GETLINK, 0, nl.ifinfo() + nl.attr(nl.IFLA_IFNAME, name))
    for mtype, payload in conn._replies(seq):
        if mtype == nl.NLMSG_ERROR:
            code = -struct.unpack_from("=i", payload)[0]
            raise OSError(code, "link %s" % name)
        return payload
    raise OSError(19, "link %s" % name)


def _describe(payload):
    """(name, {"index", "flags", "mtu", "master", "kind", "mac"}) of an RTM_NEWLINK payload."""
    _, _, index, flags, _ = struct.unpack_from("=BxHiII", payload)
    attrs = nl.parse_attrs(payload, _IFINFO_SIZE)
    name = attrs.get(nl.IFLA_IFNAME, b"\0").rstrip(b"\0").decode()
    info = nl.parse_attrs(attrs.get(nl.IFLA_LINKINFO, b""))
    return name, {
        "index": index, "flags": flags,
        "mtu": struct.unpack("=I", attrs[nl.IFLA_MTU])[0] if nl.IFLA_MTU in attrs else 0,
        "master": struct.unpack("=I", attrs[nl.IFLA_MASTER])[0] if nl.IFLA_MASTER in attrs else 0,
        "kind": info.get(nl.IFLA_INFO_KIND, b"").rstrip(b"\0").decode(),
        "mac": ":".join("%02x" % b for b in attrs.get(nl.IFLA_ADDRESS, b"")),
    }


def links(conn):
    """{name: {"index", "flags", "mtu", "master", "kind", "mac"}} of every link."""
    return dict(_describe(payload) for payload in conn.dump(nl.RTM_GETLINK, nl.ifinfo()))


def add_bridge(conn, name, mtu=None, mac=None):
    """Create bridge `name` (EEXIST is not an error) and set it up; its ifindex.

    mac: the bridge's own address, given explicitly (as dockerd does): a bridge whose address
    the kernel picks takes the lowest of its ports' addresses, and takes another whenever a
    port with a lower one joins or that port leaves (a container's veth, a namespace made
    ahead), so the gateway's MAC would change under the running containers, whose ARP caches
    keep the old one: their traffic to the gateway is dropped until the entry expires (a
    connection attempt hangs for tens of seconds). An address set by hand stays. A bridge
    that exists already keeps the address it has, now set explicitly."""
    attrs = nl.attr(nl.IFLA_IFNAME, name) + nl.nested(nl.IFLA_LINKINFO, nl.attr(nl.IFLA_INFO_KIND, "bridge"))
    if mtu:
        attrs += nl.u32(nl.IFLA_MTU, mtu)
    if mac:
        attrs += nl.attr(nl.IFLA_ADDRESS, mac_bytes(mac))
    try:
        conn.request(nl.RTM_NEWLINK, nl.ifinfo() + attrs, nl.NLM_F_CREATE | nl.NLM_F_EXCL,
                     "create bridge %s" % name)
        created = True
    except OSError as e:
        if not nl.is_exists(e):
            raise
        created = False
    _, link = _describe(_get_link(conn, name))
    index = link["index"]
    if mac and not created:  # its current address, made sticky: nothing changes under containers
        set_link(conn, index, mac=link["mac"])
    set_up(conn, index)
    return index


def add_veth(conn, host_name, peer_name, netns_fd, master=None, mtu=None, peer_mac=None, up=True):
    """Create veth host_name <-> peer_name with the peer made directly in the namespace netns_fd,
    the host end enslaved to master (an ifindex) and up (unless up=False)."""
    peer = nl.attr(nl.IFLA_IFNAME, peer_name) + nl.u32(nl.IFLA_NET_NS_FD, netns_fd)
    if mtu:
        peer += nl.u32(nl.IFLA_MTU, mtu)
    if peer_mac:
        peer += nl.attr(nl.IFLA_ADDRESS, mac_bytes(peer_mac))
    data = nl.nested(nl.IFLA_INFO_DATA, nl.attr(nl.VETH_INFO_PEER, nl.ifinfo() + peer))
    attrs = nl.attr(nl.IFLA_IFNAME, host_name) + nl.nested(
        nl.IFLA_LINKINFO, nl.attr(nl.IFLA_INFO_KIND, "veth"), data)
    if mtu:
        attrs += nl.u32(nl.IFLA_MTU, mtu)
    if master:
        attrs += nl.u32(nl.IFLA_MASTER, master)
    conn.request(nl.RTM_NEWLINK, nl.ifinfo(flags=nl.IFF_UP if up else 0, change=nl.IFF_UP) + attrs,
                 nl.NLM_F_CREATE | nl.NLM_F_EXCL, "create veth %s" % host_name)


def set_link(conn, index, name=None, master=None, mtu=None, mac=None, up=None):
    """Change link index: its name (it must be down), master, MTU, MAC, up/down, in one request."""
    attrs = b""
    if name:
        attrs += nl.attr(nl.IFLA_IFNAME, name)
    if master is not None:
        attrs += nl.u32(nl.IFLA_MASTER, master)
    if mtu:
        attrs += nl.u32(nl.IFLA_MTU, mtu)
    if mac:
        attrs += nl.attr(nl.IFLA_ADDRESS, mac_bytes(mac))
    flags = nl.ifinfo(index, nl.IFF_UP if up else 0, nl.IFF_UP if up is not None else 0)
    conn.request(nl.RTM_NEWLINK, flags + attrs, what="change link %d" % index)


def set_up(conn, index, up=True):
    conn.request(nl.RTM_NEWLINK, nl.ifinfo(index, nl.IFF_UP if up else 0, nl.IFF_UP),
                 what="set link %d up" % index)


def set_hairpin(conn, index, on=True):
    """Let a bridge port send frames back out of the port they came in on (a container reaching
    its own published port through the host's address)."""
    body = nl.ifinfo(index, family=socket.AF_BRIDGE) + nl.nested(
        nl.IFLA_PROTINFO, nl.attr(nl.IFLA_BRPORT_MODE, struct.pack("=B", 1 if on else 0)))
    conn.request(nl.RTM_SETLINK, body, what="hairpin on link %d" % index)


_OPERATIONAL = (bytes([nl.IF_OPER_UNKNOWN]), bytes([nl.IF_OPER_UP]))  # (unknown: not tracked)


def wait_operational(conn, name, timeout=2.0):
    """Wait until link `name` is operationally up; False if it is not within timeout seconds.

    A link whose carrier just came on drops what it is given to send until the kernel's
    link-state worker has activated it, and that worker runs a link with no peer (a bridge)
    at most once a second machine-wide: the bridge's first ARP request could be dropped, and
    a container's first connection then waited a second for the ARP retry."""
    deadline = time.time() + timeout
    delay = 0.0005
    while True:
        attrs = nl.parse_attrs(_get_link(conn, name), _IFINFO_SIZE)
        if attrs.get(nl.IFLA_OPERSTATE, b"\0")[:1] in _OPERATIONAL:
            return True
        if time.time() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def set_neighbour(conn, index, ip, mac):
    """The host's ARP entry for ip on link index: mac, as a STALE entry (used at once, confirmed
    by the kernel on use). Replaces what is there, an address resolution still in progress too."""
    body = struct.pack("=BxxxiHBB", socket.AF_INET, index, nl.NUD_STALE, 0, 0)  # ndmsg
    body += nl.attr(nl.NDA_DST, socket.inet_aton(ip)) + nl.attr(nl.NDA_LLADDR, mac_bytes(mac))
    conn.request(nl.RTM_NEWNEIGH, body, nl.NLM_F_CREATE | nl.NLM_F_REPLACE, "ARP entry for %s" % ip)


def delete_link(conn, name):
    """Delete link `name`; False if there was none."""
    try:
        conn.request(nl.RTM_DELLINK, nl.ifinfo() + nl.attr(nl.IFLA_IFNAME, name), what="delete %s" % name)
    except OSError as e:
        if nl.is_missing(e):
            return False
        raise
    return True


def add_address(conn, index, interface):
    """Add an IPv4Interface (address/prefix) to link index (EEXIST is not an error)."""
    iface = ipaddress.ip_interface(interface)
    body = nl.ifaddr(index, iface.network.prefixlen) + nl.attr(nl.IFA_LOCAL, iface.ip.packed) + \
        nl.attr(nl.IFA_ADDRESS, iface.ip.packed)
    if iface.network.prefixlen < 31:
        body += nl.attr(nl.IFA_BROADCAST, iface.network.broadcast_address.packed)
    try:
        conn.request(nl.RTM_NEWADDR, body, nl.NLM_F_CREATE | nl.NLM_F_EXCL, "address %s" % iface)
    except OSError as e:
        if not nl.is_exists(e):
            raise


def addresses(conn, index=None):
    """[IPv4Interface] on link index (every link when None)."""
    out = []
    for payload in conn.dump(nl.RTM_GETADDR, nl.ifaddr(0, 0)):
        family, prefixlen, _, _, idx = struct.unpack_from("=BBBBI", payload)
        if family != socket.AF_INET or (index is not None and idx != index):
            continue
        attrs = nl.parse_attrs(payload, 8)
        raw = attrs.get(nl.IFA_LOCAL) or attrs.get(nl.IFA_ADDRESS)
        out.append(ipaddress.ip_interface("%s/%d" % (ipaddress.ip_address(raw), prefixlen)))
    return out


def add_default_route(conn, gateway, index):
    """default via gateway dev index."""
    body = nl.rtmsg() + nl.attr(nl.RTA_GATEWAY, ipaddress.ip_address(gateway).packed) + \
        nl.u32(nl.RTA_OIF, index)
    conn.request(nl.RTM_NEWROUTE, body, nl.NLM_F_CREATE | nl.NLM_F_EXCL, "default route via %s" % gateway)


def routes(conn):
    """[(IPv4Network destination, oif)] of the main table's IPv4 routes."""
    out = []
    for payload in conn.dump(nl.RTM_GETROUTE, nl.rtmsg(protocol=0)):
        family, dst_len, _, _, table, _, _, rtype, _ = struct.unpack_from("=BBBBBBBBI", payload)
        if family != socket.AF_INET or rtype != nl.RTN_UNICAST:
            continue
        attrs = nl.parse_attrs(payload, 12)
        if attrs.get(nl.RTA_TABLE, struct.pack("=I", table)) != struct.pack("=I", nl.RT_TABLE_MAIN):
            continue
        dst = ipaddress.ip_address(attrs[nl.RTA_DST]) if nl.RTA_DST in attrs else ipaddress.ip_address(0)
        oif = struct.unpack("=I", attrs[nl.RTA_OIF])[0] if nl.RTA_OIF in attrs else 0
        out.append((ipaddress.ip_network("%s/%d" % (dst, dst_len), strict=False), oif))
    return out


def mac_for(ip):
    """Docker's MAC for an IPv4 address: 02:42 followed by the address's four bytes."""
    return "02:42:" + ":".join("%02x" % b for b in ipaddress.ip_address(ip).packed)


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def parse_mac(text, what="--mac-address"):
    # type: (str, str) -> str
    """A MAC address a container's eth0 can take, as aa:bb:cc:dd:ee:ff (':' or '-' between
    octets); a 400 naming it if it is malformed, multicast or all zeros (the kernel refuses
    those for an interface)."""
    parts = str(text).replace("-", ":").split(":")
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        octets = []
    if len(parts) != 6 or len(octets) != 6 or any(len(p) != 2 for p in parts):
        raise InvalidParameter("invalid MAC address %r (%s): %s" % (text, what, MAC_HELP))
    if octets[0] & 1:
        raise InvalidParameter("invalid MAC address %r (%s): a multicast address (the first octet "
                               "is odd) cannot be an interface's; %s" % (text, what, MAC_HELP))
    if not any(octets):
        raise InvalidParameter("invalid MAC address %r (%s): all zeros; %s" % (text, what, MAC_HELP))
    return ":".join("%02x" % o for o in octets)
