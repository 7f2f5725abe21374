"""Image references as the registry client sees them: `[domain/]path[:tag][@digest]`.

Docker's normalisation: no domain means Docker Hub (`docker.io`), a one-component Hub path
gets `library/`, no tag and no digest means `latest`. `index.docker.io` is the same as
`docker.io`. Parsing is runtime.store.reference's; this module only answers "which registry,
which repository, which tag or digest".
"""

import re

from runtime.errors import InvalidParameter
from runtime.store import reference

HUB_DOMAIN = reference.HUB
DEFAULT_TAG = reference.DEFAULT_TAG

_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


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
    parameter (which may also be a digest). The grammar and Docker Hub normalisation are the
    store's (runtime.store.reference), so names match what the store records. Raises
    InvalidParameter with the reason."""
    repo, ref_tag, digest = reference.split(name)
    if tag:
        if tag.startswith("sha256:"):
            digest = reference.split("x@" + tag)[2]
        elif not _TAG.match(tag):
            raise InvalidParameter("invalid tag format: %r: tags are up to 128 letters, digits, "
                                   "'_', '.' and '-'" % tag)
        else:
            ref_tag = tag
    domain, path = repo.split("/", 1)
    if digest:
        ref_tag = None  # name:tag@digest pulls by digest, as docker does
    elif not ref_tag:
        ref_tag = DEFAULT_TAG
    return Reference(domain, path, ref_tag, digest)
