"""The engine's events (`GET /events`, `berth events`): dockerd's messages
({"Type", "Action", "Actor": {"ID", "Attributes"}, "scope", "time", "timeNano"} plus the old
"status"/"id"/"from" fields), kept in a bounded ring so a client can ask for the last minutes
(`since`), and handed to every subscriber as they happen. Filters as dockerd's: type,
container, image, volume, network, label, event, daemon."""

import collections
import threading
import time

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Optional  # noqa: F401

RING = 1024  # events kept for `since` (dockerd keeps 256)
FILTERS = ("type", "container", "image", "volume", "network", "label", "event", "daemon",
           "scope", "config", "node", "plugin", "secret", "service")
TYPES = ("container", "image", "volume", "network", "daemon", "plugin", "service", "node", "secret",
         "config", "builder")


def check_filters(filters):
    # type: (Dict[str, List[str]]) -> Dict[str, List[str]]
    """The filters, or InvalidParameter naming an unknown key."""
    for key in filters or {}:
        if key not in FILTERS:
            raise InvalidParameter("invalid filter '%s': events take %s" % (key, ", ".join(FILTERS[:8])))
    for t in (filters or {}).get("type", []):
        if t not in TYPES:
            raise InvalidParameter("invalid filter 'type=%s': use container, image, volume, network or daemon"
                                   % t)
    return filters or {}


def _strip_tag(name):
    # type: (str) -> str
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def matches(ev, filters):
    # type: (dict, Dict[str, List[str]]) -> bool
    """dockerd's events filter: every given key must match."""
    actor = ev["Actor"]
    attrs = actor.get("Attributes") or {}
    kind = ev["Type"]
    for key, values in filters.items():
        if not values:
            continue
        if key == "type" and kind not in values:
            return False
        if key == "event" and ev["Action"] not in values and ev["Action"].split(":")[0] not in values:
            return False
        if key in ("container", "volume", "network", "daemon"):
            names = (actor["ID"], attrs.get("name", "")) if kind == key else ()
            if key == "container":  # an id prefix or the name
                ok = any(n and (n == v or (n == actor["ID"] and n.startswith(v)))
                         for n in names for v in values)
            else:
                ok = any(n in values for n in names if n)
            if not ok:
                return False
        if key == "image":
            name = attrs.get("name" if kind == "image" else "image", "")
            candidates = {actor["ID"], name, _strip_tag(actor["ID"]), _strip_tag(name)} - {""}
            if not candidates & set(values):
                return False
        if key == "label":
            for v in values:
                k, eq, val = v.partition("=")
                if k not in attrs or (eq and attrs[k] != val):
                    return False
        if key == "scope" and "local" not in values:
            return False
    return True


def parse_time(text, what):
    # type: (Optional[str], str) -> Optional[float]
    """`since`/`until`: seconds[.nanoseconds] since the epoch, or RFC 3339."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    from runtime.timefmt import parse_rfc3339
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise InvalidParameter("invalid %s %r: use a unix time (seconds) or an RFC 3339 time"
                               % (what, text)) from None


def container_attributes(c, **extra):
    # type: (object, object) -> dict
    """dockerd's Actor.Attributes of a container event: its labels, image and name, and extra
    (values as strings)."""
    attrs = dict(c.cfg["Config"].get("Labels") or {})
    attrs.update(image=c.cfg["Config"].get("Image") or c.cfg.get("Image", ""), name=c.name)
    attrs.update({k: str(v) for k, v in extra.items()})
    return attrs


def container_event(events, c, action, **extra):
    # type: (Optional[EventLog], object, str, object) -> None
    """Emit a container event (nothing when there is no event log)."""
    if events is not None:
        events.emit("container", action, c.id, container_attributes(c, **extra))


def message(record):
    # type: (tuple) -> dict
    """The message dockerd sends for a ring record (kind, action, actor id, attributes,
    time in ns, extra keys or None): a dict of its own for each subscriber."""
    kind, action, actor_id, attributes, ns, extra = record
    ev = {"Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": dict(attributes)},
          "scope": "local", "time": ns // 1000000000, "timeNano": ns}
    if kind == "container":  # the fields of API < 1.22 that the docker CLI still reads
        ev.update(status=action, id=actor_id, **{"from": attributes.get("image", "")})
    elif kind == "image":
        ev.update(status=action, id=actor_id)
    if extra:
        ev.update(extra)
    return ev


class EventLog(object):
    """The ring and its subscribers. The ring keeps each event as a tuple and makes its message
    when a subscriber reads it: a container event's message is ~870 bytes of dicts, its record
    ~480 (4,096 of them held 3.5 MB as messages, 2.0 MB as records; the ring keeps 1,024)."""

    def __init__(self, size=RING):
        # type: (int) -> None
        self.ring = collections.deque(maxlen=size)  # type: collections.deque
        self.cond = threading.Condition()
        self.seq = 0  # events emitted so far (the ring's newest is number seq)

    def emit(self, kind, action, actor_id, attributes=None, **extra):
        # type: (str, str, str, Optional[dict], object) -> dict
        """Record one event and wake the subscribers; the event as they get it."""
        record = (kind, action, actor_id, dict(attributes or {}), int(time.time() * 1e9),
                  extra or None)
        with self.cond:
            self.ring.append(record)
            self.seq += 1
            self.cond.notify_all()
        return message(record)

    def subscribe(self, since=None, until=None, filters=None, stop=None):
        # type: (Optional[float], Optional[float], Optional[dict], Optional[threading.Event]) -> Iterator[dict]
        """The events from `since` (kept ones first), then new ones as they come, until
        `until` (None: for ever, or until stop is set). Without since: only new ones."""
        filters = check_filters(filters)
        now = time.time()
        if since is not None and until is not None and until < since:
            return
        with self.cond:
            seq = self.seq
            past = list(self.ring) if since is not None else []
        for record in past:
            t = record[4] / 1e9
            if t < since:
                continue
            if until is not None and t > until:
                return
            ev = message(record)
            if matches(ev, filters):
                yield ev
        if until is not None and until <= now:
            return
        while True:
            with self.cond:
                while self.seq == seq:
                    if stop is not None and stop.is_set():
                        return
                    wait = 1.0 if until is None else min(1.0, until - time.time())
                    if wait <= 0:
                        return
                    self.cond.wait(wait)
                new = self.seq - seq
                fresh = list(self.ring)[-new:] if new <= len(self.ring) else list(self.ring)
                seq = self.seq
            for record in fresh:
                if until is not None and record[4] / 1e9 > until:
                    return
                ev = message(record)
                if matches(ev, filters):
                    yield ev
