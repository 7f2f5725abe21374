"""Trying a registry's endpoints in order (mirrors, then the registry; HTTPS, then plain HTTP
for insecure registries) until one answers, with the error naming every endpoint tried."""

import logging

from runtime.errors import NotFound, Unauthorized
from runtime.registry.client import RegistryError, Repository
from runtime.registry.names import HUB_DOMAIN
from runtime.registry.transport import TransportError

LOG = logging.getLogger("berth.registry")


def run(regconfig, ref, creds, fn, push=False, action=None):
    """Call `fn(repo)` with a Repository on each endpoint for `ref` in turn and return
    (result, repo) from the first that works.

    A mirror that fails is skipped with a warning; an insecure registry's HTTPS endpoint that
    cannot be reached falls back to HTTP; other errors (not found, unauthorized) from the
    registry itself are raised as they are. When every endpoint fails, the error names each
    (prefixed with `action`, by default "pull of NAME" or "push of NAME")."""
    endpoints = regconfig.endpoints(ref.domain)
    if push:
        endpoints = [e for e in endpoints if not e.mirror]
    failures = []
    last = None
    for i, ep in enumerate(endpoints):
        repo = Repository(ep, ref.path, creds, push=push, name=ref.familiar)
        if ref.domain == HUB_DOMAIN and not ep.mirror:
            label = "Docker Hub (%s)" % ep.url
        else:
            label = "mirror %s" % ep.url if ep.mirror else ep.url
        try:
            result = fn(repo)
        except TransportError as e:
            last = e
            failures.append("%s: %s" % (label, _strip(e, ep)))
            if i + 1 < len(endpoints):
                (LOG.warning if ep.mirror else LOG.debug)("%s failed, trying the next endpoint: %s",
                                                          label, e)
            continue
        except (RegistryError, NotFound, Unauthorized) as e:
            if not ep.mirror:
                raise
            last = e
            failures.append("%s: %s" % (label, e))
            LOG.warning("%s failed, trying the next endpoint: %s", label, e)
            continue
        regconfig.prefer(ref.domain, ep)
        return result, repo
    if len(failures) == 1 and not isinstance(last, TransportError):
        raise last
    kind = type(last) if isinstance(last, (NotFound, Unauthorized)) else TransportError
    what = action or "%s of %s" % ("push" if push else "pull", ref.familiar_tagged())
    raise kind("%s failed: %s" % (what, "; ".join(failures)))


def _strip(exc, ep):
    # "cannot reach http://host: connection refused" already names the URL; keep the reason.
    msg = str(exc)
    prefix = "cannot reach %s: " % ep.url
    return msg[len(prefix):] if msg.startswith(prefix) else msg
