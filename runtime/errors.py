"""The engine's error kinds. The API maps each kind to one HTTP status (runtime/api/httpstatus.py).

Every error carries a one-line message that names what is wrong and, where it helps, what to do.
"""


class BerthError(Exception):
    """Base of every error the engine raises on purpose (HTTP 500 unless a subclass says otherwise)."""


class InvalidParameter(BerthError):
    """The caller asked for something malformed: a bad reference, option or archive (HTTP 400)."""


class ExecFailed(InvalidParameter):
    """An exec's process could not be started (its command not found, not executable); its
    exit code (127 or 126) is recorded as the exec's (HTTP 400 when the start is detached; an
    attached start gets the message in its stream, as dockerd writes it)."""


class NotFound(BerthError):
    """No such image, container, volume, exec instance or blob (HTTP 404)."""


class Conflict(BerthError):
    """The object exists but is in a state that forbids the request, e.g. removing a running
    container or an image in use (HTTP 409)."""


class NotModified(BerthError):
    """The request is a no-op: starting a running container, stopping a stopped one (HTTP 304)."""


class Forbidden(BerthError):
    """The request is understood but refused by policy (HTTP 403)."""


class Unauthorized(BerthError):
    """A registry refused the credentials (HTTP 401)."""


class SystemFailure(BerthError):
    """The kernel or the system failed an operation that was valid to ask for, e.g. a freezer
    that does not settle on pause (HTTP 500, as dockerd's errdefs.System)."""


class Unavailable(BerthError):
    """The engine is too busy to take the request now; nothing of it was done, retry later
    (HTTP 503, as dockerd's errdefs.Unavailable)."""


class StateTransitionError(Conflict):
    """A container cannot move from its current state to the one asked for."""
