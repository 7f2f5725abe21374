"""Image references as the registry client sees them: `[domain/]path[:tag][@digest]`.

Docker's normalisation: no domain means Docker Hub (`docker.io`), a one-component Hub path
gets `library/`, no tag and no digest means `latest`. `index.docker.io` is the same as
`docker.io`. The store has its own reference module for tags; this one only answers "which
registry, which repository, which tag or digest".
"""

import re

from runtime.errors import InvalidParameter

HUB_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


class Reference(object):
    """A parsed reference: `domain` (e.g. docker.io, 127.0.0.1:5000), `path`
    (library/busybox), `tag` (None when pulling by digest only) and `digest`."""

    def __init__(self, domain, path, tag=None, digest=None):
        # type: (str, str, str, str) -> None
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def repository(self):
        # type: () -> str
        """The fully qualified repository name, e.g. docker.io/library/busybox."""
        return self.domain + "/" + self.path

    @property
    def familiar(self):
        # type: () -> str
        """The short repository name users type: busybox, user/app, host:5000/app."""
        if self.domain == HUB_DOMAIN:
            return self.path[len("library/"):] if self.path.startswith("library/") else self.path
        return self.repository

    @property
    def reference(self):
        # type: () -> str
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def tagged(self):
        # type: () -> str
        """Fully qualified `domain/path:tag` (or `@digest` when only a digest is known)."""
        if self.tag:
            return "%s:%s" % (self.repository, self.tag)
        return "%s@%s" % (self.repository, self.digest)

    def familiar_tagged(self):
        # type: () -> str
        """`busybox:latest`, as docker prints it in `Status:` lines."""
        if self.tag:
            return "%s:%s" % (self.familiar, self.tag)
        return "%s@%s" % (self.familiar, self.digest)

    def __repr__(self):
        return "Reference(%r)" % self.tagged()


def parse(name, tag=None):
    # type: (str, str) -> Reference
    """Parse `name` (optionally with `:tag`/`@digest`), with `tag` from the API's `tag=`
    parameter (which may also be a digest). Raises InvalidParameter with the reason."""
    if not name or name != name.strip():
        raise InvalidParameter("invalid reference format: %r: give a name such as busybox:latest" % name)
    digest = None
    rest = name
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidParameter("invalid reference format: bad digest in %r" % name)
    ref_tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, ref_tag = rest.rsplit(":", 1)
        if not _TAG.match(ref_tag):
            raise InvalidParameter("invalid reference format: bad tag in %r" % name)
    if tag:
        if tag.startswith("sha256:") or _DIGEST.match(tag):
            digest = tag
        elif not _TAG.match(tag):
            raise InvalidParameter("invalid tag format: %r" % tag)
        else:
            ref_tag = tag
    parts = rest.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        domain, parts = first, parts[1:]
    else:
        domain = HUB_DOMAIN
    if domain == "index.docker.io":
        domain = HUB_DOMAIN
    if domain == HUB_DOMAIN and len(parts) == 1:
        parts = ["library"] + parts
    for part in parts:
        if not _PATH_COMPONENT.match(part):
            raise InvalidParameter(
                "invalid reference format: repository name must be lowercase: %r" % name)
    if digest:
        ref_tag = None  # name:tag@digest pulls by digest, as docker does
    elif not ref_tag:
        ref_tag = DEFAULT_TAG
    return Reference(domain, "/".join(parts), ref_tag, digest)
