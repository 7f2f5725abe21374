"""RFC 3339 times as Docker writes and reads them (UTC, nanosecond digits, `Z`)."""

import calendar
import re
import time

if False:  # for the type comments only (the forkserver imports this module: no typing there)
    from typing import Optional  # noqa: F401

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
    secs = _fixed_utc(main)
    if secs is None:  # not the usual fixed form: strptime decides (and names what is wrong)
        secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def _fixed_utc(main):
    # type: (str) -> Optional[int]
    """Seconds of "YYYY-MM-DDTHH:MM:SS" by slicing, or None when main is not exactly that with
    valid values (time.strptime took ~50 us a call: most of `ps -a` with 1,000 containers)."""
    if len(main) != 19 or main[4] != "-" or main[7] != "-" or main[10] != "T" or main[13] != ":" \
            or main[16] != ":":
        return None
    digits = main[0:4] + main[5:7] + main[8:10] + main[11:13] + main[14:16] + main[17:19]
    if not digits or digits.strip("0123456789"):
        return None
    y, mo, d = int(main[0:4]), int(main[5:7]), int(main[8:10])
    h, mi, sec = int(main[11:13]), int(main[14:16]), int(main[17:19])
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h <= 23 and mi <= 59
            and sec <= 61):
        return None
    return calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))


def unix_time(iso):
    # type: (str) -> int
    """Whole seconds since the epoch of an RFC 3339 time; 0 when missing or malformed (image
    configs written by other tools)."""
    m = _PREFIX.match(iso or "")
    if not m:
        return 0
    return calendar.timegm(tuple(int(x) for x in m.groups()) + (0, 0, 0))


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DATETIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?"
                       r"(Z|[+-]\d\d:\d\d)?)?$")


def parse_duration(text):
    # type: (str) -> float
    """Seconds of a Go duration (`10m`, `1h30m`, `1.5s`, `-2h`); ValueError otherwise."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if not m:
            raise ValueError("invalid duration %r" % text)
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body:
        raise ValueError("invalid duration %r" % text)
    return sign * total


def parse_timestamp(text, now_=None):
    # type: (str, float) -> float
    """Seconds since the epoch of what Docker's `--since`, `--until` and the `until` filter
    take: a Go duration before now (`10m`), an RFC 3339 date or time (without a zone: local
    time), or unix seconds (`1700000000.5`). ValueError with Docker's wording otherwise."""
    value = (text or "").strip()
    current = time.time() if now_ is None else now_
    try:
        return current - parse_duration(value)
    except ValueError:
        pass
    m = _DATETIME.match(value)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        parts = (int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
        if zone:
            offset = 0 if zone == "Z" else (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * \
                (1 if zone[0] == "+" else -1)
            secs = calendar.timegm(parts + (0, 0, 0)) - offset
        else:
            secs = time.mktime(parts + (0, 0, -1))
        return secs + (float(frac) if frac else 0.0)
    if re.match(r"^\d+(\.\d+)?$", value):
        return float(value)
    raise ValueError('failed to parse value as time or duration: "%s"' % value)
