"""rtnetlink over a NETLINK_ROUTE socket: build and send requests, parse dumps.

Only what the bridge driver needs (links, addresses, routes). Each request asks for an ACK so
that an error comes back as an OSError naming the request; a socket works in the network
namespace it was created in (see netns.socket_in)."""

import errno
import os
import socket
import struct

NETLINK_ROUTE = 0

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
NDA_DST, NDA_LLADDR = 1, 2
NUD_STALE = 0x04

NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_ROOT, NLM_F_MATCH = 0x100, 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
_NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)  # (the kernel's NLA_TYPE_MASK)

IFF_UP = 0x1

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_NET_NS_FD = 12, 16, 18, 28
IF_OPER_UNKNOWN, IF_OPER_UP = 0, 6
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin

IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 7, 15
RT_TABLE_MAIN = 254
RTPROT_BOOT, RTPROT_KERNEL = 3, 2
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1

_HDR = struct.Struct("=IHHII")      # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")   # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst/src len, tos, table, protocol, scope, type, flags


def _align(n):
    return (n + 3) & ~3


def attr(kind, payload):
    """One netlink attribute (type, payload bytes), padded to 4 bytes."""
    if isinstance(payload, str):
        payload = payload.encode() + b"\0"
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (_align(len(payload)) - len(payload))


def nested(kind, *attrs):
    """A nested attribute holding attrs."""
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u32(kind, value):
    return attr(kind, struct.pack("=I", value))


def parse_attrs(data, offset=0):
    """{type, its nested and byte-order flags masked: payload} of the attributes in data[offset:]
    (the last of a repeated type wins)."""
    out = {}
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        out[kind & _NLA_TYPE_MASK] = data[offset + 4:offset + length]
        offset += _align(length)
    return out


def ifinfo(index=0, flags=0, change=0, family=socket.AF_UNSPEC):
    return _IFINFO.pack(family, 0, index, flags, change)


def ifaddr(index, prefixlen, family=socket.AF_INET):
    return _IFADDR.pack(family, prefixlen, 0, RT_SCOPE_UNIVERSE, index)


def rtmsg(dst_len=0, scope=RT_SCOPE_UNIVERSE, protocol=RTPROT_BOOT, family=socket.AF_INET):
    return _RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, protocol, scope, RTN_UNICAST, 0)


class Netlink(object):
    """A NETLINK_ROUTE socket; request() raises OSError(errno, 'what: strerror')."""

    def __init__(self, sock=None):
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, kind, flags, body):
        self.seq += 1
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST, self.seq, 0) + body)
        return self.seq

    def request(self, kind, body, flags=0, what="netlink request"):
        """Send one request with NLM_F_ACK and wait for its ACK."""
        seq = self._send(kind, flags | NLM_F_ACK, body)
        for mtype, payload in self._replies(seq):
            if mtype == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                if code:
                    raise OSError(code, "%s: %s" % (what, os.strerror(code)))
                return

    def dump(self, kind, body):
        """The payloads of a dump request's replies."""
        seq = self._send(kind, NLM_F_DUMP, body)
        out = []
        for mtype, payload in self._replies(seq):
            if mtype == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                raise OSError(code, "netlink dump: %s" % os.strerror(code))
            out.append(payload)
        return out

    def _replies(self, seq):
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, flags, rseq, _ = _HDR.unpack_from(data, offset)
                payload = data[offset + _HDR.size:offset + length]
                offset += _align(length)
                if rseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return
                yield mtype, payload
                if mtype == NLMSG_ERROR or not flags & NLM_F_MULTI:
                    return


def is_exists(err):
    return isinstance(err, OSError) and err.errno == errno.EEXIST


def is_missing(err):
    return isinstance(err, OSError) and err.errno in (errno.ENODEV, errno.ENOENT, errno.ESRCH)
