"""Image references as the store keeps them, normalised the way Docker does.

`busybox` -> `docker.io/library/busybox:latest`; `user/app:1` -> `docker.io/user/app:1`;
`localhost:5000/x/y` -> `localhost:5000/x/y:latest`; `name@sha256:<hex>` keeps its digest.
The store saves only canonical names; `familiar()` gives back what docker prints
(`busybox:latest`, `user/app:1`, `localhost:5000/x/y:latest`).
"""

import re

from runtime.errors import InvalidParameter

HUB = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?$"
                     r"|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{1,64}$")


def _bad(ref, why):
    # type: (str, str) -> InvalidParameter
    return InvalidParameter("invalid reference format: %r: %s (e.g. busybox, busybox:1.36, "
                            "localhost:5000/team/app:v1, app@sha256:<64 hex>)" % (ref, why))


def split(ref):
    # type: (str) -> tuple
    """(repository, tag or None, digest or None) of a reference, the repository fully qualified
    (`docker.io/library/busybox`). Raises InvalidParameter naming what is wrong."""
    if not isinstance(ref, str) or not ref or ref != ref.strip() or len(ref) > 255 + 128 + 72:
        raise _bad(ref, "empty or has surrounding spaces")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise _bad(ref, "the digest must be sha256:<64 lowercase hex>")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise _bad(ref, "bad tag %r" % tag)
    parts = rest.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"
                           or parts[0] != parts[0].lower()):
        domain, parts = parts[0], parts[1:]
        if not _DOMAIN.match(domain):
            raise _bad(ref, "bad registry host %r" % domain)
    else:
        domain = HUB
    if domain == "index.docker.io":
        domain = HUB
    for part in parts:
        if not _COMPONENT.match(part):
            raise _bad(ref, "repository names are lowercase letters, digits and separators . _ -")
    if domain == HUB and len(parts) == 1:
        parts = ["library"] + parts
    return domain + "/" + "/".join(parts), tag, digest


def normalize(ref):
    # type: (str) -> str
    """The canonical form: `repo:tag`, or `repo@digest` when a digest is given (a tag beside a
    digest is dropped, as Docker does when resolving), `:latest` when neither is given."""
    repo, tag, digest = split(ref)
    if digest:
        return repo + "@" + digest
    return repo + ":" + (tag or DEFAULT_TAG)


def normalize_repo(repo, tag=None):
    # type: (str, str) -> str
    """`repo` + `tag` as given by `docker tag IMAGE REPO[:TAG]` or the API's repo/tag pair."""
    if tag:
        if not _TAG.match(tag):
            raise _bad(tag, "bad tag")
        repo_name, own_tag, digest = split(repo)
        if own_tag or digest:
            raise _bad(repo, "give the tag either in the name or separately, not both")
        return repo_name + ":" + tag
    return normalize(repo)


def familiar(name):
    # type: (str) -> str
    """`docker.io/library/busybox:latest` -> `busybox:latest`, as docker shows RepoTags."""
    if name.startswith(HUB + "/"):
        name = name[len(HUB) + 1:]
        if name.startswith("library/") and "/" not in name[len("library/"):].split(":")[0] \
                .split("@")[0]:
            name = name[len("library/"):]
    return name


def repository(name):
    # type: (str) -> str
    """The repository part of a canonical name (without tag or digest)."""
    if "@" in name:
        return name.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if name.rfind(":") > name.rfind("/") else name


def looks_like_id(ref):
    # type: (str) -> bool
    """True for `sha256:<hex prefix>` or a bare hex string that may be an image id prefix."""
    if ref.startswith("sha256:"):
        return bool(_HEX.match(ref[7:]))
    return bool(_HEX.match(ref))
