"""Published ports: `-p` specs to Docker's ExposedPorts/PortBindings, and the bindings a
container actually gets (ephemeral ports for `-P` and empty host ports).

Spec forms (as `docker run -p`): `CPORT[/PROTO]`, `HPORT:CPORT`, `IP:HPORT:CPORT`, `IP::CPORT`,
each port possibly a range `A-B`; a host range with one container port means "one free port
of the range"."""

import ipaddress
import socket

from runtime.errors import Conflict, InvalidParameter

PROTOS = ("tcp", "udp", "sctp")


def _port_range(text, spec, what):
    """(first, last) of 'N' or 'A-B'."""
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise InvalidParameter("invalid %s %r in -p %s: give a number 1-65535 or a range A-B"
                               % (what, text, spec)) from None
    if not (1 <= a <= b <= 65535):
        raise InvalidParameter("invalid %s %r in -p %s: ports are 1-65535, A-B with A <= B"
                               % (what, text, spec))
    return a, b


def parse_spec(spec):
    """One `-p` spec -> [(container 'PORT/PROTO', {"HostIp", "HostPort"})]."""
    rest, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOS:
        raise InvalidParameter("invalid protocol %r in -p %s: use tcp, udp or sctp" % (proto, spec))
    host_ip = ""
    if rest.startswith("["):  # [ipv6]:...
        end = rest.find("]")
        host_ip, rest = rest[1:end], rest[end + 2:]
        parts = [host_ip] + rest.split(":")
    else:
        parts = rest.split(":")
    if len(parts) == 1:
        host_port, cport = "", parts[0]
    elif len(parts) == 2:
        host_port, cport = parts
    elif len(parts) == 3:
        host_ip, host_port, cport = parts
    else:
        raise InvalidParameter("invalid -p %s: use [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]" % spec)
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise InvalidParameter("invalid host IP %r in -p %s" % (host_ip, spec)) from None
    if not cport:
        raise InvalidParameter("invalid -p %s: the container port is missing" % spec)
    c_lo, c_hi = _port_range(cport, spec, "container port")
    if not host_port:
        return [("%d/%s" % (p, proto), {"HostIp": host_ip, "HostPort": ""}) for p in range(c_lo, c_hi + 1)]
    h_lo, h_hi = _port_range(host_port, spec, "host port")
    if c_lo == c_hi and h_lo != h_hi:  # one port out of a host range
        return [("%d/%s" % (c_lo, proto), {"HostIp": host_ip, "HostPort": "%d-%d" % (h_lo, h_hi)})]
    if h_hi - h_lo != c_hi - c_lo:
        raise InvalidParameter("invalid -p %s: the host and container ranges differ in size" % spec)
    return [("%d/%s" % (c_lo + i, proto), {"HostIp": host_ip, "HostPort": str(h_lo + i)})
            for i in range(c_hi - c_lo + 1)]


def parse_specs(specs):
    """`-p` specs -> (ExposedPorts, PortBindings) as in a create request."""
    exposed, bindings = {}, {}
    for spec in specs:
        for port, binding in parse_spec(spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    return exposed, bindings


def parse_expose(specs):
    """`--expose PORT[-PORT][/PROTO]` -> ExposedPorts."""
    out = {}
    for spec in specs:
        rest, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in PROTOS:
            raise InvalidParameter("invalid protocol %r in --expose %s" % (proto, spec))
        lo, hi = _port_range(rest, spec, "port")
        for p in range(lo, hi + 1):
            out["%d/%s" % (p, proto)] = {}
    return out


def split_port(key):
    """'80/tcp' -> (80, 'tcp'), checked."""
    port, _, proto = str(key).partition("/")
    proto = proto or "tcp"
    try:
        n = int(port)
    except ValueError:
        n = 0
    if not 1 <= n <= 65535 or proto not in PROTOS:
        raise InvalidParameter("invalid port %r: use PORT/tcp or PORT/udp" % key)
    return n, proto


class Mapping(tuple):
    """(proto, host_ip, host_port, container_port) of one published port."""
    __slots__ = ()

    def __new__(cls, proto, host_ip, host_port, container_port):
        return tuple.__new__(cls, (proto, host_ip, host_port, container_port))

    proto = property(lambda self: self[0])
    host_ip = property(lambda self: self[1])
    host_port = property(lambda self: self[2])
    container_port = property(lambda self: self[3])


def ephemeral_range():
    """The kernel's ip_local_port_range (first, last)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


class PortReservations(object):
    """Host ports held by the daemon: a bound socket per published (ip, port, proto) so that no
    other program takes it (and a port already taken is refused), as dockerd does."""

    def __init__(self):
        self.held = {}  # (proto, ip, port) -> socket

    def reserve(self, proto, host_ip, port):
        key = (proto, host_ip, port)
        if key in self.held:
            raise Conflict("host port %s:%d/%s is already published" % (host_ip or "0.0.0.0", port, proto))
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            s.close()
            raise Conflict("host port %s:%d/%s is not available: %s" % (
                host_ip or "0.0.0.0", port, proto, e.strerror)) from None
        self.held[key] = s
        return s

    def release(self, proto, host_ip, port):
        s = self.held.pop((proto, host_ip, port), None)
        if s is not None:
            s.close()

    def close(self):
        for s in self.held.values():
            s.close()
        self.held.clear()


def resolve(bindings, publish_all, exposed, reservations, taken=None):
    """The Mappings for a container: PortBindings (plus every exposed port when publish_all),
    an empty host port or a host range replaced by a free one, each reserved in reservations.
    On an error every port reserved here is released again."""
    wanted = []
    for key, lst in sorted((bindings or {}).items()):
        for b in lst or [{}]:
            wanted.append((key, (b or {}).get("HostIp") or "", str((b or {}).get("HostPort") or "")))
    if publish_all:
        for key in sorted(exposed or {}):
            if key not in (bindings or {}):
                wanted.append((key, "", ""))
    done = []
    try:
        for key, host_ip, host_port in wanted:
            cport, proto = split_port(key)
            if proto == "sctp":
                raise InvalidParameter("publishing sctp port %s is not supported" % key)
            if host_ip and ipaddress.ip_address(host_ip).version != 4:
                raise InvalidParameter("publishing on IPv6 address %s is not supported" % host_ip)
            if host_ip == "0.0.0.0":
                host_ip = ""
            if host_port and "-" not in host_port:
                lo, hi = _port_range(host_port, key, "host port")
            else:
                lo, hi = _port_range(host_port, key, "host port") if host_port else ephemeral_range()
            port = _reserve_one(reservations, proto, host_ip, lo, hi, bool(host_port and lo == hi))
            done.append(Mapping(proto, host_ip, port, cport))
    except Exception:
        for m in done:
            reservations.release(m.proto, m.host_ip, m.host_port)
        raise
    return done


def _reserve_one(reservations, proto, host_ip, lo, hi, exact):
    last = None
    for port in range(lo, hi + 1):
        try:
            reservations.reserve(proto, host_ip, port)
            return port
        except Conflict as e:
            if exact:
                raise
            last = e
    raise Conflict("no free host port in %d-%d/%s (%s)" % (lo, hi, proto, last))


def port_map(mappings, exposed):
    """NetworkSettings.Ports: every exposed or published port -> its host bindings or None."""
    out = {k: None for k in (exposed or {})}
    for m in mappings:
        key = "%d/%s" % (m.container_port, m.proto)
        out.setdefault(key, None)
        out[key] = (out[key] or []) + [{"HostIp": m.host_ip or "0.0.0.0", "HostPort": str(m.host_port)}]
    return out
