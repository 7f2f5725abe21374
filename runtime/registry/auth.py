"""Registry authentication: anonymous, Basic, and the Bearer token dance.

A registry answers 401 with `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`;
the client then asks the realm (the token server) for a token for the scopes it needs, with
Basic credentials, a refresh token (identitytoken) or none, and resends with
`Authorization: Bearer TOKEN`. Tokens are cached until shortly before they expire.
"""

import base64
import json
import re
import threading
import time
from urllib.parse import urlencode

from runtime.errors import Unauthorized
from runtime.registry import transport

_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
DEFAULT_TOKEN_LIFETIME = 60
EXPIRY_MARGIN = 10


class Credentials(object):
    """What the user gave: username/password, or an identity (refresh) token, or a ready
    registry token (X-Registry-Auth's `registrytoken`)."""

    def __init__(self, username=None, password=None, identitytoken=None, registrytoken=None):
        # type: (str, str, str, str) -> None
        self.username = username or None
        self.password = password or None
        self.identitytoken = identitytoken or None
        self.registrytoken = registrytoken or None

    @classmethod
    def from_auth(cls, auth):
        # type: (dict) -> Credentials
        """From a decoded X-Registry-Auth / AuthConfig dict (any key case)."""
        auth = {k.lower(): v for k, v in (auth or {}).items()}
        return cls(auth.get("username"), auth.get("password"), auth.get("identitytoken"),
                   auth.get("registrytoken"))

    def __bool__(self):
        return bool(self.username or self.identitytoken or self.registrytoken)

    def basic(self):
        # type: () -> str
        """The Basic Authorization header value."""
        raw = ("%s:%s" % (self.username or "", self.password or "")).encode()
        return "Basic " + base64.b64encode(raw).decode()


def parse_challenge(header):
    # type: (str) -> tuple
    """`Bearer realm="x",service="y"` -> ("bearer", {"realm": "x", "service": "y"})."""
    header = (header or "").strip()
    scheme, _, rest = header.partition(" ")
    params = {}
    for m in _PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


class TokenCache(object):
    """Bearer tokens by (realm, service, scopes, user), until their expiry."""

    def __init__(self):
        # type: () -> None
        self._tokens = {}  # type: dict
        self._lock = threading.Lock()

    def get(self, key):
        """A token still valid for a while, or None."""
        with self._lock:
            entry = self._tokens.get(key)
        if entry and entry[1] > time.time() + EXPIRY_MARGIN:
            return entry[0]
        return None

    def put(self, key, token, expires_at):
        """Remember `token` until `expires_at` (epoch seconds)."""
        with self._lock:
            self._tokens[key] = (token, expires_at)


TOKENS = TokenCache()


class Authenticator(object):
    """Produces the Authorization header for one registry endpoint and one set of credentials,
    learning the scheme from the registry's 401 challenges."""

    def __init__(self, registry, creds=None, cache=TOKENS):
        # type: (str, Credentials, TokenCache) -> None
        self.registry = registry
        self.creds = creds or Credentials()
        self.cache = cache
        self.scheme = None  # type: str
        self.params = {}  # type: dict

    def learn(self, header):
        # type: (str) -> bool
        """Take a WWW-Authenticate challenge; False when it is not one we can answer."""
        scheme, params = parse_challenge(header)
        if scheme not in ("bearer", "basic"):
            return False
        self.scheme, self.params = scheme, params
        return True

    def header(self, scopes, fresh=False):
        # type: (list, bool) -> str
        """The Authorization value for a request needing `scopes`, or None for anonymous."""
        if self.scheme == "basic":
            return self.creds.basic() if self.creds.username else None
        if self.scheme != "bearer":
            return None
        if self.creds.registrytoken:
            return "Bearer " + self.creds.registrytoken
        return "Bearer " + self.token(scopes, fresh)

    def token(self, scopes, fresh=False):
        # type: (list, bool) -> str
        """A Bearer token for `scopes` from the challenge's realm (cached until expiry)."""
        realm = self.params.get("realm")
        if not realm:
            raise Unauthorized("%s: Bearer challenge without a realm" % self.registry)
        service = self.params.get("service", "")
        scopes = sorted(set(scopes or ([self.params["scope"]] if self.params.get("scope") else [])))
        key = (realm, service, tuple(scopes), self.creds.username, self.creds.identitytoken)
        if not fresh:
            cached = self.cache.get(key)
            if cached:
                return cached
        query = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        headers = {"Accept": "application/json"}
        if self.creds.identitytoken:
            form = query + [("grant_type", "refresh_token"), ("client_id", "berth"),
                            ("refresh_token", self.creds.identitytoken)]
            resp = transport.request("POST", realm, {
                "Content-Type": "application/x-www-form-urlencoded"}, urlencode(form).encode())
        else:
            if self.creds.username:
                headers["Authorization"] = self.creds.basic()
            sep = "&" if "?" in realm else "?"
            resp = transport.request("GET", realm + (sep + urlencode(query) if query else ""), headers)
        body = resp.read()
        if resp.status in (401, 403):
            raise Unauthorized("login to %s failed: unauthorized: incorrect username or password "
                               "(run `berth login %s`)" % (self.registry, self.registry))
        if resp.status != 200:
            raise Unauthorized("token server %s answered %d %s" % (realm, resp.status, resp.reason))
        try:
            doc = json.loads(body.decode("utf-8"))
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token, doc = None, {}
        if not token:
            raise Unauthorized("token server %s sent no token" % realm)
        lifetime = doc.get("expires_in") or DEFAULT_TOKEN_LIFETIME
        self.cache.put(key, token, time.time() + max(int(lifetime), DEFAULT_TOKEN_LIFETIME))
        return token
