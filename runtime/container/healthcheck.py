"""Health checks (Config.Healthcheck, the image's HEALTHCHECK) with dockerd's rules: the
config merged at create, and how each probe's result moves the status (starting, healthy,
unhealthy), kept in `health.json` in the container's directory. The probes themselves run as
execs, from the engine (runtime/services/health.py)."""

import os

from runtime import TYPE_CHECKING
from runtime.atomicfile import read_json, write_json

if TYPE_CHECKING:
    from typing import Optional  # noqa: F401

SECOND = 1000000000  # durations are nanoseconds, as in the API
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "StartInterval": 5 * SECOND,
            "Retries": 3}
MAX_LOG = 5  # results kept
MAX_OUTPUT = 4096  # bytes of a probe's output kept
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
FILE = "health.json"


def merge(own, image):
    # type: (Optional[dict], Optional[dict]) -> Optional[dict]
    """Config.Healthcheck as stored: the container's, completed from the image's (a test or a
    duration left out comes from the image); ValueError with one line when it is unusable."""
    if not own:
        merged = dict(image) if image else None
    else:
        merged = dict(own)
        if image:
            if not merged.get("Test"):
                merged["Test"] = image.get("Test")
            for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if not merged.get(key) and image.get(key):
                    merged[key] = image[key]
    if not merged:
        return None
    test = merged.get("Test") or []
    if isinstance(test, str):
        test = merged["Test"] = ["CMD-SHELL", test]
    if test and (not isinstance(test, list) or test[0] not in ("NONE", "CMD", "CMD-SHELL")
                 or (test[0] != "NONE" and len(test) < 2)):
        raise ValueError("invalid health check test %r: use [\"CMD\", ...], [\"CMD-SHELL\", \"...\"] or "
                         "[\"NONE\"]" % (test,))
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = int(merged.get(key) or 0)
        if value < 0 or 0 < value < 1000000:
            raise ValueError("%s in Healthcheck cannot be less than 1ms" % key)
    if int(merged.get("Retries") or 0) < 0:
        raise ValueError("Retries in Healthcheck cannot be negative")
    return merged


def active(check):
    # type: (Optional[dict]) -> bool
    """Whether there is a probe to run."""
    test = (check or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def command(check):
    # type: (dict) -> list
    test = check["Test"]
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


def setting(check, key):
    # type: (dict, str) -> int
    return int(check.get(key) or 0) or DEFAULTS[key]


def reset(container_dir):
    # type: (str) -> None
    """A start: starting again, no streak (the log stays, as dockerd's)."""
    h = read(container_dir)
    write_json(os.path.join(container_dir, FILE), {"Status": STARTING, "FailingStreak": 0,
                                                   "Log": h.get("Log") or []})


def read(container_dir):
    # type: (str) -> dict
    return read_json(os.path.join(container_dir, FILE), {}) or {}


def record(container_dir, check, result, since_start):
    # type: (str, dict, dict, float) -> tuple
    """Apply one probe result ({"Start", "End", "ExitCode", "Output"}) run since_start seconds
    after the container started; returns (old status, new status)."""
    h = read(container_dir) or {"Status": STARTING, "FailingStreak": 0, "Log": []}
    old = h.get("Status", STARTING)
    new = old
    if result["ExitCode"] == 0:
        h["FailingStreak"] = 0
        new = HEALTHY
    elif not (old == STARTING and since_start * SECOND < int(check.get("StartPeriod") or 0)):
        h["FailingStreak"] = h.get("FailingStreak", 0) + 1
        if h["FailingStreak"] >= setting(check, "Retries"):
            new = UNHEALTHY
    h["Status"] = new
    h["Log"] = (h.get("Log") or [])[-(MAX_LOG - 1):] + [result]
    write_json(os.path.join(container_dir, FILE), h)
    return old, new
