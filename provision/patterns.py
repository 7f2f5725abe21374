"""Host patterns (``--limit``) with Ansible's syntax: terms separated by ``:`` or ``,``; a
term is a group or host name, a glob (``web*``), a regex (``~web0[12]``) or a group with a
subscript (``web[0]``, ``web[-1]``, ``web[0:2]``, inclusive as in Ansible); ``&term``
intersects, ``!term`` excludes; ``@FILE`` reads host names, one a line. Plain terms are
joined first, then intersected, then excluded, whatever order they are written in."""

from __future__ import annotations

import fnmatch
import re

from provision.errors import InputError
from provision.inventory import ALL, Inventory

_SUBSCRIPT = re.compile(r"^(.+?)\[(-?\d*)(?::(-?\d*))?\]$")


def split_terms(pattern: str) -> list[str]:
    """Split on ``,`` (or, when there is none, on ``:``) outside brackets."""
    sep = "," if "," in pattern else ":"
    terms, depth, cur = [], 0, ""
    for c in pattern:
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        if c == sep and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += c
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def _match(inv: Inventory, body: str) -> list[str]:
    """Hosts of one term body (no prefix), in inventory order."""
    if body.startswith("~"):
        try:
            rx = re.compile(body[1:])
        except re.error as e:
            raise InputError(f"--limit: bad regular expression {body[1:]!r}: {e}") from None
        groups = [g for g in inv.groups if rx.match(g)]
        named = {h for h in inv.hosts if rx.match(h)}
    elif body in inv.groups:
        return inv.members(body)
    elif body in inv.hosts:
        return [body]
    else:
        m = _SUBSCRIPT.match(body)
        if m and m.group(1) in inv.groups:
            return _subscript(inv.members(m.group(1)), m.group(2), m.group(3), body)
        groups = fnmatch.filter(inv.groups, body)
        named = set(fnmatch.filter(inv.hosts, body))
    for g in groups:
        named.update(inv.members(g))
    return [h for h in inv.hosts if h in named]


def _subscript(hosts: list[str], start: str, end: str | None, body: str) -> list[str]:
    def num(text: str, default: int) -> int:
        return int(text) if text not in ("", None) else default

    if end is None:
        if start == "":
            raise InputError(f"--limit: empty subscript in {body!r}")
        i = num(start, 0)
        return [hosts[i]] if -len(hosts) <= i < len(hosts) else []
    lo, hi = num(start, 0), num(end, len(hosts) - 1)
    lo, hi = lo % len(hosts) if hosts else 0, hi % len(hosts) if hosts else -1
    return hosts[lo : hi + 1]


def _read_file(path: str) -> list[str]:
    try:
        with open(path) as f:
            return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as e:
        raise InputError(f"--limit @{path}: {e.strerror}") from None


def select(inv: Inventory, pattern: str | None) -> list[str]:
    """The hosts of ``inv`` that ``pattern`` selects, in inventory order (every host when
    ``pattern`` is empty). InputError for a term that matches nothing (a typo in ``!web03``
    must not widen a rollout) and for a selection that leaves no host."""
    if not pattern or pattern.strip() in (ALL, "*"):
        chosen = list(inv.hosts)
    else:
        plain: list[str] = []
        inter: list[list[str]] = []
        excl: list[str] = []
        for term in split_terms(pattern):
            if term.startswith("@"):
                names = _read_file(term[1:])
                unknown = [n for n in names if n not in inv.hosts]
                if unknown:
                    raise InputError(f"--limit {term}: {', '.join(unknown)} not in the inventory")
                plain += names
                continue
            op, body = (term[0], term[1:]) if term[0] in "&!" else ("", term)
            found = _match(inv, body)
            if not found and body not in inv.groups:
                raise InputError(f"--limit: {body!r} matches no group or host of the inventory")
            if op == "&":
                inter.append(found)
            elif op == "!":
                excl += found
            else:
                plain += found
        only_ops = not any(not t.startswith(("&", "!")) for t in split_terms(pattern))
        keep = set(inv.hosts) if only_ops else set(plain)
        for found in inter:
            keep &= set(found)
        keep -= set(excl)
        chosen = [h for h in inv.hosts if h in keep]
    if not chosen:
        raise InputError(f"the inventory and --limit {pattern!r} leave no host to work on"
                         if pattern else "the inventory has no host")  # fmt: skip
    return chosen
