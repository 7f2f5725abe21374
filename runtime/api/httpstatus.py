"""The only place where engine errors become HTTP status codes (moby's httpstatus.FromError)."""

import errno
import json

from runtime import TYPE_CHECKING, errors

if TYPE_CHECKING:
    from typing import Optional  # noqa: F401

# Most specific first: StateTransitionError is a Conflict, every kind is a BerthError.
_STATUS = (
    (errors.NotModified, 304),
    (errors.InvalidParameter, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.SystemFailure, 500),
    (errors.Unavailable, 503),
)


class RouteNotFound(errors.NotFound):
    """No route matches the method and path."""


def status_for(exc):
    # type: (BaseException) -> int
    """The HTTP status for an exception raised by a route or the engine (500 if unknown)."""
    for kind, code in _STATUS:
        if isinstance(exc, kind):
            return code
    return 500


def is_disk_full(exc):
    # type: (BaseException) -> bool
    """ENOSPC or EDQUOT."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def message_for(exc, data_root=None):
    # type: (BaseException, Optional[str]) -> str
    """The one-line message sent to the client (data_root: berthd's, named by a disk-full error)."""
    text = str(exc) or exc.__class__.__name__
    if is_disk_full(exc):
        where = "the filesystem of berthd's data root %s" % data_root if data_root else \
            "the filesystem of berthd's data root"
        return ("no space left on the device%s: free space on %s and retry"
                % (" (writing %s)" % exc.filename if exc.filename else "", where))
    if not isinstance(exc, errors.BerthError):
        text = "internal error: %s: %s" % (exc.__class__.__name__, text)
    return text.strip().splitlines()[0] if text.strip() else text


def error_body(exc, data_root=None):
    # type: (BaseException, Optional[str]) -> bytes
    """The JSON body Docker sends for an error: {"message": "..."}."""
    return json.dumps({"message": message_for(exc, data_root)}).encode() + b"\n"
