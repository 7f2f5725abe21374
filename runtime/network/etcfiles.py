"""A container's /etc/hosts and /etc/resolv.conf, as dockerd writes them.

hosts: localhost lines, `--add-host` entries (`host-gateway` is the default bridge's gateway
unless daemon.json `host-gateway-ip` says otherwise), then the container's own address(es)
with its hostname (and `hostname.domainname`).

resolv.conf: on a user network `nameserver 127.0.0.11` (the embedded resolver, which forwards to
`--dns` or the host's upstream servers); elsewhere `--dns`, or the host's nameservers without
loopback ones (a stub such as systemd-resolved's 127.0.0.53 is replaced by the servers it
forwards to), or Google's if none is left, as dockerd does. `--dns-search` and `--dns-option`
replace the host's search and options lines."""

import ipaddress

from runtime.errors import InvalidParameter
from runtime.network import dns

FALLBACK_DNS = ["8.8.8.8", "8.8.4.4"]
_LOCAL = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
          "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def parse_extra_hosts(extra, host_gateway):
    """ExtraHosts ['name:ip', 'name=ip'] -> [(name, ip)]; 'host-gateway' becomes host_gateway."""
    out = []
    for entry in extra or []:
        sep = "=" if "=" in entry else ":"
        name, _, ip = entry.partition(sep)
        if ip == "host-gateway":
            if not host_gateway:
                raise InvalidParameter("--add-host %s: host-gateway needs the default bridge or "
                                       "daemon.json host-gateway-ip" % entry)
            ip = host_gateway
        ip = ip.strip("[]")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidParameter("invalid --add-host %r: use NAME:IP (or NAME:host-gateway)"
                                   % entry) from None
        if not name:
            raise InvalidParameter("invalid --add-host %r: the host name is missing" % entry)
        out.append((name, ip))
    return out


def hosts(hostname, domainname="", addresses=(), extra=()):
    """/etc/hosts of a container with its own network namespace."""
    text = _LOCAL
    for name, ip in extra:
        text += "%s\t%s\n" % (ip, name)
    names = hostname if not domainname else "%s.%s %s" % (hostname, domainname, hostname)
    for ip in addresses or ["127.0.0.1"]:
        text += "%s\t%s\n" % (ip, names)
    return text


def resolv_conf(host_text, embedded, servers=None, search=None, options=None, upstream=None):
    """The container's resolv.conf. host_text: the host's /etc/resolv.conf; upstream: the
    nameservers to use when the host's are all loopback (dns.upstream_servers())."""
    host_servers, host_search, host_options = [], None, None
    for line in host_text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            host_servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            host_search = parts[1:]
        elif parts[0] == "options":
            host_options = (host_options or []) + parts[1:]
    if embedded:
        ns = [dns.ADDRESS]
        options = list(options if options else host_options or [])
        if "ndots:0" not in options and not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
    elif servers:
        ns = list(servers)
    else:
        ns = [s for s in host_servers if not _loopback(s)]
        if not ns and any(_loopback(s) for s in host_servers) and upstream:
            ns = [s for s in upstream if not _loopback(s)]
        ns = ns or FALLBACK_DNS
    search = search if search else host_search
    options = options if options else host_options
    lines = ["nameserver %s" % s for s in ns]
    if search and search != ["."]:
        lines.append("search %s" % " ".join(search))
    if options:
        lines.append("options %s" % " ".join(options))
    return "\n".join(lines) + "\n"


def upstream_for(servers, host_text_paths=("/etc/resolv.conf",)):
    """The embedded resolver's forwarders: --dns, else the host's upstream servers."""
    return list(servers) if servers else dns.upstream_servers(host_text_paths)


def _loopback(server):
    try:
        return ipaddress.ip_address(server.split("%")[0]).is_loopback
    except ValueError:
        return False
