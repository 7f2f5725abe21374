"""Forgetting a container's flows in the kernel's connection tracking table (ctnetlink).

A tracked flow keeps the address translation it got when it began. Without this, a UDP
client that keeps sending to a published port goes on being DNATed to the address of a
container that is gone, even after another container publishes that port; and a new
container given the released address receives the old flows' retransmissions. dockerd
deletes an endpoint's flows when the endpoint goes; berth does for endpoints that published
ports, by dumping the table and deleting each match (the per-address filters of newer
kernels are not on 3.10, and would not spare the walk of the whole hash anyway)."""

import errno
import logging
import socket
import struct

from runtime.network import netlink as nl

log = logging.getLogger("berthd")

NETLINK_NETFILTER = 12
_CT_GET = (1 << 8) | 1      # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
_CT_DELETE = (1 << 8) | 2   # ... | IPCTNL_MSG_CT_DELETE
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ZONE = 1, 2, 18
CTA_TUPLE_IP = 1
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
_NFGENMSG = struct.Struct("=BBH")  # family, version, resource id


def _addresses(tuple_payload):
    """(source, destination) packed IPv4 addresses of a CTA_TUPLE_* payload."""
    ip = nl.parse_attrs(nl.parse_attrs(tuple_payload).get(CTA_TUPLE_IP, b""))
    return ip.get(CTA_IP_V4_SRC), ip.get(CTA_IP_V4_DST)


def forget(addresses):
    # type: (list) -> int
    """Delete every tracked IPv4 flow from or to any of addresses (dotted quads) in this
    thread's network namespace; how many were deleted. A kernel without conntrack (or
    without ctnetlink) has nothing to forget: 0."""
    wanted = set(socket.inet_aton(a) for a in addresses if a)
    if not wanted:
        return 0
    header = _NFGENMSG.pack(socket.AF_INET, 0, 0)
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
    except OSError as e:
        log.debug("conntrack: no netfilter netlink: %s", e)
        return 0
    deleted = 0
    with nl.Netlink(sock) as conn:
        try:
            flows = conn.dump(_CT_GET, header)
        except OSError as e:
            log.debug("conntrack: no table to dump: %s", e)
            return 0
        for payload in flows:
            attrs = nl.parse_attrs(payload, _NFGENMSG.size)
            orig = attrs.get(CTA_TUPLE_ORIG)
            if orig is None:
                continue
            ends = _addresses(orig) + _addresses(attrs.get(CTA_TUPLE_REPLY, b""))
            if not wanted.intersection(ends):
                continue
            body = header + nl.nested(CTA_TUPLE_ORIG, orig)
            if CTA_ZONE in attrs:
                body += nl.attr(CTA_ZONE, attrs[CTA_ZONE])
            try:
                conn.request(_CT_DELETE, body, what="delete tracked flow")
                deleted += 1
            except OSError as e:
                if e.errno != errno.ENOENT:  # (ENOENT: it ended meanwhile)
                    raise
    return deleted
