"""What a data-root check reports: one Finding per inconsistency, with the fix it would apply.

A finding's `repair` says who may fix it:
- "safe": `berthd --check-store --repair` applies the fix (it only removes what was never
  complete or drops a name pointing nowhere; never a complete image, container or volume);
- "manual": the fix needs a decision (re-pull, remove the container...): the text says which;
- "none": nothing to fix, the state is shown as it is (e.g. a monitor died; the container is
  reported exited with that reason).
`partial` marks leftovers of interrupted operations (temp entries, incomplete directories,
content no image uses); `reusable` the part of them a pull finds again and reuses (blobs and
unpacked layers), which berthd's start keeps.
"""

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional  # noqa: F401

SAFE, MANUAL, NONE = "safe", "manual", "none"


class Finding(object):
    """One inconsistency: area ("blob", "layer", "image", "reference", "tmp", "container",
    "volume", ...), subject (an id, name or path), problem, fix (what the repair does or what to
    do), repair (SAFE, MANUAL, NONE), partial (an interrupted operation's leftover), reusable
    (content a pull reuses)."""

    def __init__(self, area, subject, problem, fix, repair=MANUAL, apply=None, partial=False,
                 reusable=False):
        # type: (str, str, str, str, str, Optional[Callable[[], Any]], bool, bool) -> None
        self.area = area
        self.subject = subject
        self.problem = problem
        self.fix = fix
        self.repair = repair if apply is not None or repair != SAFE else MANUAL
        self.partial = partial or reusable
        self.reusable = reusable
        self.repaired = False
        self._apply = apply

    def apply(self):
        # type: () -> bool
        """Apply a safe fix; True when done (a fix whose object is already gone counts)."""
        if self.repair != SAFE or self._apply is None or self.repaired:
            return self.repaired
        try:
            self._apply()
        except FileNotFoundError:
            pass
        self.repaired = True
        return True

    def line(self):
        # type: () -> str
        """`area subject: problem; fix: fix [repair]` on one line."""
        state = "repaired" if self.repaired else self.repair
        return "%s %s: %s; fix: %s [%s]" % (self.area, self.subject, self.problem, self.fix, state)

    def to_json(self):
        # type: () -> Dict[str, Any]
        """The API's shape (GET /berth/check)."""
        return {"Area": self.area, "Subject": self.subject, "Problem": self.problem,
                "Fix": self.fix, "Repair": self.repair, "Partial": self.partial,
                "Reusable": self.reusable, "Repaired": self.repaired}

    def __repr__(self):
        return "Finding(%s)" % self.line()
