"""The `filters` query parameter's rules, shared by every list and prune (moby's
api/types/filters): which keys an endpoint accepts, `label` / `label!` matching, `until`."""

import time

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter
from runtime.timefmt import parse_timestamp

if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional  # noqa: F401


def validate(filters, accepted):
    # type: (Optional[Dict[str, List[str]]], Iterable[str]) -> Dict[str, List[str]]
    """The filters as they are, or InvalidParameter (400) `invalid filter 'KEY'` for a key the
    endpoint does not know, as dockerd answers (never the whole list, never a wider prune)."""
    filters = filters or {}
    known = set(accepted)
    for key in sorted(filters):
        if key not in known:
            raise InvalidParameter("invalid filter '%s'" % key)
    return filters


def invalid_value(key, value):
    # type: (str, str) -> InvalidParameter
    """dockerd's error for a value a filter does not take."""
    return InvalidParameter("invalid filter '%s=%s'" % (key, value))


def _kv_match(values, labels):
    # type: (List[str], Dict[str, str]) -> bool
    """Every `k` or `k=v` of values is in labels (moby's MatchKVList)."""
    for value in values:
        key, eq, want = value.partition("=")
        if key not in labels or (eq and labels[key] != want):
            return False
    return True


def labels_match(filters, labels):
    # type: (Dict[str, List[str]], Optional[Dict[str, str]]) -> bool
    """`label` (all must be present) and `label!` (excluded when all of them match)."""
    labels = labels or {}
    if filters.get("label") and not _kv_match(filters["label"], labels):
        return False
    if filters.get("label!") and _kv_match(filters["label!"], labels):
        return False
    return True


def until(filters, now=None):
    # type: (Dict[str, List[str]], Optional[float]) -> Optional[float]
    """The `until` filter as seconds since the epoch (None when absent); one value only."""
    values = filters.get("until") or []
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameter("more than one until filter specified")
    try:
        return parse_timestamp(values[0], time.time() if now is None else now)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None


def truthy(filters, key):
    # type: (Dict[str, List[str]], str) -> Optional[bool]
    """A boolean filter (`dangling`, `all`, `is-task`): None when absent; a value other than
    true/false/1/0 is 400."""
    values = filters.get(key) or []
    if not values:
        return None
    out = None
    for v in values:
        low = str(v).lower()
        if low in ("1", "true"):
            out = True
        elif low in ("0", "false"):
            out = bool(out)
        else:
            raise InvalidParameter("invalid filter '%s=%s'" % (key, v))
    return out
