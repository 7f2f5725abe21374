"""The only place where engine errors become HTTP status codes (moby's httpstatus.FromError)."""

import errno
import json

from runtime import errors

# Most specific first: StateTransitionError is a Conflict, every kind is a BerthError.
_STATUS = (
    (errors.NotModified, 304),
    (errors.InvalidParameter, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.SystemFailure, 500),
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


def message_for(exc):
    # type: (BaseException) -> str
    """The one-line message sent to the client."""
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ("no space left on the device%s: free space on the filesystem of berthd's data "
                "root and retry"
                % (" (writing %s)" % exc.filename if exc.filename else ""))
    if not isinstance(exc, errors.BerthError):
        text = "internal error: %s: %s" % (exc.__class__.__name__, text)
    return text.strip().splitlines()[0] if text.strip() else text


def error_body(exc):
    # type: (BaseException) -> bytes
    """The JSON body Docker sends for an error: {"message": "..."}."""
    return json.dumps({"message": message_for(exc)}).encode() + b"\n"
