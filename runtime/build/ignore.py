"""`.dockerignore`: Docker's pattern rules (moby/patternmatcher). Each line is a pattern in Go's
filepath.Match syntax (`*`, `?`, `[a-z]`, `\\` escapes) over slash-separated paths relative to
the context, plus `**` for any number of directories; `!PATTERN` re-includes. The last
matching line wins, and a pattern that matches a directory matches everything under it."""

import posixpath
import re

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import List, Tuple  # noqa: F401


def read_patterns(text):
    # type: (str) -> List[str]
    """The patterns of a .dockerignore file (comments and blank lines dropped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def _clean(pattern):
    # type: (str) -> tuple
    """(is an exception, the pattern cleaned like filepath.Clean without a leading /)."""
    neg = pattern.startswith("!")
    if neg:
        pattern = pattern[1:].strip()
    return neg, posixpath.normpath(pattern).lstrip("/") or "."


def _regex(pattern):
    # type: (str) -> object
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + "$")


class Matcher(object):
    """Compiled patterns; `excluded(path)` says whether a context path is left out."""

    def __init__(self, patterns):
        # type: (List[str]) -> None
        self.rules = []  # type: List[Tuple[bool, object, int]]
        for p in patterns:
            neg, body = _clean(p)
            self.rules.append((neg, _regex(body), body.count("/") + 1))
        self.has_exceptions = any(neg for neg, _, _ in self.rules)

    def excluded(self, path):
        # type: (str) -> bool
        """True when path (relative, slash-separated) is matched by the last matching rule
        without `!`; a rule matching one of its parent directories matches it too."""
        parts = path.split("/")
        out = False
        for neg, rx, depth in self.rules:
            hit = bool(rx.match(path))
            if not hit and len(parts) > 1 and depth < len(parts):
                hit = bool(rx.match("/".join(parts[:depth])))
            if hit:
                out = not neg
        return out
