"""A distribution-API session for one repository on one endpoint: the /v2/ probe, the auth
retry on 401, manifests, blob downloads, and the push primitives (HEAD, mount, monolithic and
chunked uploads, manifest PUT). Registry error bodies become runtime.errors kinds with one-line
messages.
"""

import json
from urllib.parse import quote, urljoin

from runtime.errors import BerthError, Forbidden, NotFound, Unauthorized
from runtime.registry import manifest as mf
from runtime.registry import transport
from runtime.registry.auth import Authenticator
from runtime.sha256 import sha256


class RegistryError(BerthError):
    """The registry answered with an error we have no better kind for."""


class Repository(object):
    """Talks to repository `path` (e.g. library/busybox) at `endpoint`. `push` asks for
    pull,push scopes. `name` is what error messages call the repository."""

    def __init__(self, endpoint, path, creds=None, push=False, name=None):
        self.endpoint = endpoint
        self.path = path
        self.name = name or "%s/%s" % (endpoint.host, path)
        self.auth = Authenticator(endpoint.host, creds)
        self.actions = "pull,push" if push else "pull"
        self._pinged = False

    # -- plumbing -------------------------------------------------------------------------
    def ping(self):
        # type: () -> None
        """GET /v2/: proves the endpoint is a registry and learns how it wants auth."""
        resp = transport.request("GET", self.endpoint.url + "/v2/", {}, context=self.endpoint.context)
        resp.read()
        if resp.status == 401:
            self.auth.learn(resp.header("WWW-Authenticate", ""))
        elif resp.status != 200:
            raise RegistryError("%s is not a registry: GET /v2/ answered %d %s"
                                % (self.endpoint.url, resp.status, resp.reason))
        self._pinged = True

    def scopes(self, extra=()):
        # type: (tuple) -> list
        """The token scopes for this session, plus `extra`."""
        return ["repository:%s:%s" % (self.path, self.actions)] + list(extra)

    def send(self, method, path, headers=None, body=None, length=None, extra_scopes=(), follow=True):
        # type: (str, str, dict, object, int, tuple, bool) -> transport.Response
        """One request with auth; on 401 learn the challenge and retry once."""
        if not self._pinged:
            self.ping()
        url = path if "://" in path else self.endpoint.url + path
        start = body.tell() if hasattr(body, "seek") else None
        for fresh in (False, True):
            h = dict(headers or {})
            value = self.auth.header(self.scopes(extra_scopes), fresh=fresh)
            if value:
                h["Authorization"] = value
            resp = transport.request(method, url, h, body, length, self.endpoint.context, follow)
            if resp.status != 401 or fresh or (body is not None and start is None
                                               and not isinstance(body, bytes)):
                return resp
            challenge = resp.header("WWW-Authenticate", "")
            resp.read()
            if not self.auth.learn(challenge):
                return resp
            if start is not None:
                body.seek(start)
        return resp

    def fail(self, resp, what):
        """Raise the error kind for a failed response, with the registry's own message."""
        body = resp.read()
        codes, detail = [], ""
        try:
            errors = json.loads(body.decode("utf-8")).get("errors") or []
            codes = [e.get("code", "") for e in errors]
            detail = "; ".join(e.get("message", "") for e in errors if e.get("message"))
        except (ValueError, AttributeError, UnicodeDecodeError):
            pass
        detail = detail or resp.reason or ""
        host = self.endpoint.host
        if resp.status == 401:
            if not self.auth.creds:
                raise Unauthorized("%s: access denied: %s does not exist or %s requires authentication "
                                   "(run `berth login %s`)" % (what, self.name, host, host))
            if self.auth.scheme == "bearer":
                raise Unauthorized("%s: access denied to %s for user %s: %s" % (
                    what, self.name, self.auth.creds.username or "(token)", detail))
            raise Unauthorized("%s: unauthorized: incorrect username or password for %s "
                               "(run `berth login %s`)" % (what, host, host))
        if resp.status == 403:
            raise Forbidden("%s: denied by %s: %s" % (what, host, detail))
        if resp.status == 404:
            if "NAME_UNKNOWN" in codes:
                raise NotFound("%s: repository %s not found: %s" % (what, self.name, detail))
            raise NotFound("%s not found: %s" % (what, detail))
        raise RegistryError("%s: %s answered %d: %s" % (what, host, resp.status, detail))

    def _repo_url(self, kind, ref=""):
        return "/v2/%s/%s/%s" % (self.path, kind, quote(ref, safe=":@"))

    # -- pull -----------------------------------------------------------------------------
    def get_manifest(self, reference):
        # type: (str) -> tuple
        """(raw bytes, media type, digest) of the manifest for a tag or digest; a digest
        reference is verified against the bytes received."""
        resp = self.send("GET", self._repo_url("manifests", reference), {"Accept": mf.ACCEPT})
        label = "%s%s%s" % (self.name, "@" if ":" in reference else ":", reference)
        if resp.status != 200:
            self.fail(resp, "manifest for %s" % label)
        raw = resp.read()
        digest = "sha256:" + sha256(raw).hexdigest()
        if ":" in reference and reference != digest:
            raise RegistryError("manifest for %s: registry sent content with digest %s"
                                % (label, digest))
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        return raw, media_type, digest

    def open_blob(self, digest):
        # type: (str) -> transport.Response
        """The streaming response for a blob (redirects followed); read it and close it."""
        resp = self.send("GET", self._repo_url("blobs", digest))
        if resp.status != 200:
            self.fail(resp, "blob %s of %s" % (digest, self.name))
        return resp

    # -- push -----------------------------------------------------------------------------
    def blob_size(self, digest):
        # type: (str) -> int
        """Size of the blob in this repository, or None when the registry lacks it."""
        resp = self.send("HEAD", self._repo_url("blobs", digest))
        if resp.status not in (200, 404):
            self.fail(resp, "checking blob %s" % digest)
        resp.read()  # HEAD: no body; releases the connection
        return int(resp.header("Content-Length") or 0) if resp.status == 200 else None

    def mount(self, digest, source_path):
        # type: (str, str) -> object
        """Cross-repository mount from `source_path` on the same registry: True when
        mounted, else the upload URL the registry opened instead."""
        resp = self.send("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                         % (self.path, quote(digest), quote(source_path)),
                         extra_scopes=("repository:%s:pull" % source_path,))
        if resp.status == 201:
            resp.read()
            return True
        if resp.status == 202:
            resp.read()
            return self._location(resp)
        self.fail(resp, "mounting blob %s from %s" % (digest, source_path))

    def start_upload(self):
        # type: () -> str
        """POST .../blobs/uploads/: the upload session URL."""
        resp = self.send("POST", "/v2/%s/blobs/uploads/" % self.path)
        if resp.status != 202:
            self.fail(resp, "starting upload to %s" % self.name)
        resp.read()
        return self._location(resp)

    def upload(self, digest, fileobj, size, location=None, chunk_size=None, progress=None):
        # type: (str, object, int, str, int, object) -> None
        """Upload a blob: one PUT when `chunk_size` is None or the blob fits in one chunk,
        else PATCH chunks then a closing PUT. `progress(n)` after each chunk sent."""
        location = location or self.start_upload()
        if chunk_size and size > chunk_size:
            offset = 0
            while offset < size:
                data = fileobj.read(min(chunk_size, size - offset))
                if not data:
                    break
                resp = self.send("PATCH", location, {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": "%d-%d" % (offset, offset + len(data) - 1)}, data)
                if resp.status != 202:
                    self.fail(resp, "uploading blob %s" % digest)
                resp.read()
                location = self._location(resp)
                offset += len(data)
                if progress:
                    progress(offset)
            resp = self.send("PUT", _with_digest(location, digest))
        else:
            resp = self.send("PUT", _with_digest(location, digest),
                             {"Content-Type": "application/octet-stream"}, fileobj, size)
            if progress:
                progress(size)
        if resp.status not in (201, 204):
            self.fail(resp, "uploading blob %s" % digest)
        resp.read()

    def put_manifest(self, reference, raw, media_type):
        # type: (str, bytes, str) -> str
        """PUT the manifest under a tag or digest; returns its digest."""
        resp = self.send("PUT", self._repo_url("manifests", reference), {"Content-Type": media_type}, raw)
        if resp.status not in (200, 201):
            self.fail(resp, "pushing manifest for %s:%s" % (self.name, reference))
        resp.read()
        return resp.header("Docker-Content-Digest") or "sha256:" + sha256(raw).hexdigest()

    def _location(self, resp):
        loc = resp.header("Location")
        if not loc:
            raise RegistryError("%s: upload response without a Location" % self.endpoint.host)
        return urljoin(self.endpoint.url + "/", loc)


def _with_digest(url, digest):
    # type: (str, str) -> str
    return url + ("&" if "?" in url else "?") + "digest=" + quote(digest)
