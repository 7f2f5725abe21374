"""RFC 3339 times as Docker writes and reads them (UTC, nanosecond digits, `Z`)."""

import calendar
import re
import time

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: "never"
_PREFIX = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")


def rfc3339(t, nanos=True):
    # type: (float, bool) -> str
    """UTC time `t` (seconds since the epoch) as `2006-01-02T15:04:05.000000000Z` (whole
    seconds only when nanos is False); ZERO_TIME for 0."""
    if not t:
        return ZERO_TIME
    whole = int(t)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if not nanos:
        return text + "Z"
    micros = min(int((t - whole) * 1e6), 999999)
    return text + ".%09dZ" % (micros * 1000)


def now():
    # type: () -> str
    """The current time, rfc3339()."""
    return rfc3339(time.time())


def parse_rfc3339(s):
    # type: (str) -> float
    """Seconds since the epoch of an RFC 3339 UTC timestamp (0.0 for Docker's zero time);
    ValueError when malformed."""
    if not s or s.startswith("0001-"):
        return 0.0
    main, _, frac = s.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def unix_time(iso):
    # type: (str) -> int
    """Whole seconds since the epoch of an RFC 3339 time; 0 when missing or malformed (image
    configs written by other tools)."""
    m = _PREFIX.match(iso or "")
    if not m:
        return 0
    return calendar.timegm(tuple(int(x) for x in m.groups()) + (0, 0, 0))
