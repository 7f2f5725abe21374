"""Where a repository lives: the endpoints to try for a registry domain, in order, with the TLS
settings each needs. Docker Hub names go to each `registry-mirrors` entry first and to Docker Hub
last, as dockerd does. `insecure-registries` (host[:port] or CIDR; loopback always) permits
unverified TLS and then plain HTTP; everything else verifies TLS against the system CA store
plus CERTS_DIR/HOST/ca.crt (and uses client.cert/client.key there when present).
"""

import ipaddress
import os
import socket
import threading
from urllib.parse import urlsplit

from runtime.errors import InvalidParameter
from runtime.registry import transport
from runtime.registry.names import HUB_DOMAIN

HUB_URL = "https://registry-1.docker.io"
HUB_AUTH_KEY = "https://index.docker.io/v1/"
CERTS_DIR = "/etc/berth/certs.d"


class Endpoint(object):
    """One base URL to talk to, with its TLS context (None for plain HTTP)."""

    def __init__(self, url, context=None, mirror=False, insecure=False):
        # type: (str, object, bool, bool) -> None
        self.url = url.rstrip("/")
        self.context = context
        self.mirror = mirror
        self.insecure = insecure

    @property
    def host(self):
        # type: () -> str
        """host[:port] of the endpoint."""
        return urlsplit(self.url).netloc

    def __repr__(self):
        return "Endpoint(%r)" % self.url


class RegistryConfig(object):
    """Registry settings from daemon.json: `registry-mirrors`, `insecure-registries`, and the
    berth extensions `certs-dir` (else $BERTH_CERTS_DIR, else /etc/berth/certs.d) and `hub-url`
    (else $BERTH_HUB_URL, else https://registry-1.docker.io; tests point it at a dead port)."""

    KEYS = ("registry-mirrors", "insecure-registries", "certs-dir", "hub-url")

    def __init__(self, config=None):
        # type: (dict) -> None
        config = config or {}
        self.mirrors = [_check_url(m, "registry-mirrors") for m in config.get("registry-mirrors") or []]
        self.insecure = list(config.get("insecure-registries") or [])
        self.certs_dir = config.get("certs-dir") or os.environ.get("BERTH_CERTS_DIR") or CERTS_DIR
        self.hub_url = _check_url(config.get("hub-url") or os.environ.get("BERTH_HUB_URL") or HUB_URL,
                                  "hub-url")
        self._nets = []
        self._hosts = set()
        for entry in self.insecure:
            try:
                self._nets.append(ipaddress.ip_network(entry, strict=False) if "/" in entry else None)
            except ValueError:
                raise InvalidParameter("insecure-registries: %r is neither host[:port] nor a CIDR"
                                       % entry) from None
            if "/" not in entry:
                self._hosts.add(entry.lower())
        self._nets = [n for n in self._nets if n is not None]
        self._contexts = {}  # type: dict
        self._preferred = {}  # type: dict
        self._lock = threading.Lock()

    def prefer(self, domain, endpoint):
        """Remember the endpoint that worked for `domain` (for insecure ones: HTTPS or HTTP),
        so the next call tries it first."""
        if not endpoint.mirror:
            self._preferred[domain] = endpoint.url

    def is_insecure(self, host):
        # type: (str) -> bool
        """True for loopback, a listed host[:port], or a host whose address is in a listed CIDR."""
        host = host.lower()
        name = _hostname(host)
        if host in self._hosts or name in self._hosts or name == "localhost":
            return True
        addrs = []
        try:
            addrs = [ipaddress.ip_address(name)]
        except ValueError:
            if self._nets:
                try:
                    addrs = [ipaddress.ip_address(a[4][0]) for a in socket.getaddrinfo(name, None)]
                except (OSError, ValueError):
                    addrs = []
        for addr in addrs:
            if addr.is_loopback or any(addr in net for net in self._nets):
                return True
        return False

    def context(self, host, verify=True):
        """The TLS context for `host`, built once: system CAs + CERTS_DIR/host/*.crt."""
        key = (host, verify)
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is None:
                d = os.path.join(self.certs_dir, host)
                cas, client = (), None
                if verify and os.path.isdir(d):
                    cas = tuple(sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".crt")
                                       and f != "client.cert"))
                if os.path.exists(os.path.join(d, "client.cert")):
                    client = (os.path.join(d, "client.cert"), os.path.join(d, "client.key"))
                ctx = transport.tls_context(verify, cas, client)
                self._contexts[key] = ctx
            return ctx

    def endpoints(self, domain):
        # type: (str) -> list
        """Endpoints to try for a registry domain, in order."""
        if domain == HUB_DOMAIN:
            out = [self._endpoint(m, mirror=True) for m in self.mirrors]
            return out + [self._endpoint(self.hub_url)]
        if self.is_insecure(domain):
            out = [Endpoint("https://" + domain, self.context(domain, verify=False), insecure=True),
                   Endpoint("http://" + domain, None, insecure=True)]
            if self._preferred.get(domain) == out[1].url:
                out.reverse()
            return out
        return [Endpoint("https://" + domain, self.context(domain))]

    def _endpoint(self, url, mirror=False):
        parts = urlsplit(url)
        if parts.scheme == "http":
            return Endpoint(url, None, mirror=mirror, insecure=True)
        insecure = self.is_insecure(parts.netloc)
        return Endpoint(url, self.context(parts.netloc, verify=not insecure), mirror, insecure)


def auth_key(domain):
    # type: (str) -> str
    """The credentials-store key docker uses for a registry domain."""
    return HUB_AUTH_KEY if domain == HUB_DOMAIN else domain


def _hostname(host):
    # type: (str) -> str
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _check_url(url, what):
    # type: (str, str) -> str
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidParameter("%s: %r is not an http(s):// URL" % (what, url))
    return "%s://%s%s" % (parts.scheme, parts.netloc, parts.path.rstrip("/"))
