"""Restart policies (HostConfig.RestartPolicy) with dockerd's semantics: which names exist,
whether an exit is followed by a restart and after what delay, and which containers an engine
starts when it comes up. Shared by the engine (validation, start at engine start) and the
monitor, which carries the policy out (also while no engine runs).

Delay: 100 ms before the first restart, doubled before each next one up to 1 min, back to
100 ms once a run lasted 10 s. `on-failure[:N]` restarts only non-zero exits, and gives up
after N restarts (N = 0: no limit). A stop or kill through the API marks the container as
manually stopped (the MANUAL_STOP file in its directory): the policy never undoes it, and at
the next engine start only `always` brings such a container back.
"""

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Optional, Tuple  # noqa: F401

NAMES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0
MANUAL_STOP = "manual-stop"  # in the container's directory: stopped or killed through the API


def validate(policy, auto_remove=False):
    # type: (Optional[dict], bool) -> dict
    """The policy as stored ({"Name", "MaximumRetryCount"}); ValueError with a one-line reason
    for a name we do not know, a negative count, a count on a policy that takes none, or a
    policy together with AutoRemove (as dockerd refuses them)."""
    policy = dict(policy or {})
    name = policy.get("Name") or "no"
    try:
        count = int(policy.get("MaximumRetryCount") or 0)
    except (TypeError, ValueError):
        raise ValueError("invalid restart policy: MaximumRetryCount must be a number") from None
    if name not in NAMES:
        raise ValueError("invalid restart policy %r: use no, always, unless-stopped or on-failure[:N]"
                         % name)
    if count < 0:
        raise ValueError("invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise ValueError("invalid restart policy: maximum retry count cannot be used with restart "
                         "policy '%s'" % name)
    if auto_remove and name != "no":
        raise ValueError("conflicting options: cannot combine --restart %s with --rm (auto-remove)" % name)
    return {"Name": name, "MaximumRetryCount": count}


class Backoff(object):
    """One container's restart decisions over its runs (dockerd's restartmanager)."""

    def __init__(self, policy, count=0):
        # type: (dict, int) -> None
        self.policy = policy
        self.count = count  # restarts so far (RestartCount)
        self.delay = 0.0

    def next(self, exit_code, manually_stopped, ran_for):
        # type: (int, bool, float) -> Optional[float]
        """After an exit: the delay before the restart, or None when there is none."""
        name = (self.policy or {}).get("Name") or "no"
        if name == "no" or manually_stopped:
            return None
        if ran_for >= RESET_AFTER:
            self.delay = 0.0
        self.delay = min(MAX_DELAY, self.delay * 2 if self.delay else FIRST_DELAY)
        if name == "on-failure":
            most = int(self.policy.get("MaximumRetryCount") or 0)
            if exit_code == 0 or (most and self.count >= most):
                return None
        self.count += 1
        return self.delay


def start_with_engine(policy, exit_code, manually_stopped, count):
    # type: (dict, int, bool, int) -> bool
    """Whether an engine that comes up starts this stopped container (its monitor is gone:
    a reboot, or it gave up): `always` always, `unless-stopped` unless stopped through the
    API, `on-failure[:N]` after a non-zero exit it was not stopped for, under N restarts."""
    name = (policy or {}).get("Name") or "no"
    if name == "always":
        return True
    if manually_stopped:
        return False
    if name == "unless-stopped":
        return True
    if name == "on-failure":
        most = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (not most or count < most)
    return False
