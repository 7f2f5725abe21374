"""`GET /containers/json?filters=`: every filter dockerd takes (moby daemon/list.go), checked
before any container is looked at, so a typo is a 400 and never the whole list."""

import re

from runtime import TYPE_CHECKING, filterargs
from runtime.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional  # noqa: F401

ACCEPTED = ("ancestor", "before", "exited", "id", "isolation", "label", "name", "status",
            "health", "since", "volume", "network", "is-task", "publish", "expose")
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


def _ports(values, key):
    # type: (List[str], str) -> set
    """`80`, `80/udp`, `8000-8010/tcp` -> {"80/tcp", ...}."""
    out = set()
    for value in values:
        if ":" in value:
            raise InvalidParameter("filter for '%s' should not contain ':': %s" % (key, value))
        port, _, proto = value.partition("/")
        first, _, last = port.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise InvalidParameter("error while looking up for %s %s: invalid port range: %s"
                                   % (key, value, port)) from None
        if not (0 < lo <= hi <= 65535):
            raise InvalidParameter("error while looking up for %s %s: invalid port range: %s"
                                   % (key, value, port))
        out.update("%d/%s" % (p, proto or "tcp") for p in range(lo, hi + 1))
    return out


class ListFilter(object):
    """The parsed filters of one list call. `containers` is the list newest first (for
    before/since), `get(ref)` finds one by id or name, `image_ids(ref)` gives the image ids
    that have ref as themselves or an ancestor (empty when unknown)."""

    def __init__(self, filters, containers, get, image_ids):
        # type: (Dict[str, List[str]], list, Callable, Callable[[str], set]) -> None
        self.f = filterargs.validate(filters, ACCEPTED)
        f = self.f
        self.exited = []  # type: List[int]
        for v in f.get("exited", []):
            try:
                self.exited.append(int(v))
            except ValueError:
                raise InvalidParameter('strconv.Atoi: parsing "%s": invalid syntax' % v) from None
        for v in f.get("status", []):
            if v not in STATES:
                raise filterargs.invalid_value("status", v)
        for v in f.get("health", []):
            if v not in HEALTH:
                raise InvalidParameter("Unrecognised filter value for health: %s" % v)
        for v in f.get("isolation", []):
            if v not in ("default", "process"):
                raise InvalidParameter("Unrecognised filter value for isolation: %s" % v)
        self.is_task = None  # type: Optional[bool]
        if "is-task" in f:
            if f["is-task"] not in (["true"], ["false"]):
                raise filterargs.invalid_value("is-task", ",".join(f["is-task"]))
            self.is_task = f["is-task"] == ["true"]
        self.publish = _ports(f.get("publish", []), "publish")
        self.expose = _ports(f.get("expose", []), "expose")
        self.hidden = set()  # type: set
        order = [c.id for c in containers]
        for ref in f.get("before", []):  # only containers created before it
            cid = get(ref).id
            self.hidden.update(order[:order.index(cid) + 1] if cid in order else [])
        for ref in f.get("since", []):  # only containers created after it
            cid = get(ref).id
            self.hidden.update(order[order.index(cid):] if cid in order else [])
        self.ancestors = None  # type: Optional[set]
        if "ancestor" in f:
            self.ancestors = set()
            for ref in f["ancestor"]:
                try:
                    self.ancestors |= image_ids(ref)
                except (NotFound, InvalidParameter):
                    pass  # dockerd only logs an unknown ancestor: it matches nothing

    def reads_summary(self):
        # type: () -> bool
        """Whether matches_network() has anything to look at (network, publish, expose)."""
        return bool("network" in self.f or self.publish or self.expose)

    def wants_all(self):
        # type: () -> bool
        """A status filter lists stopped containers without `all` (as dockerd does)."""
        return bool(self.f.get("status"))

    def matches(self, c, state):
        # type: (object, dict) -> bool
        """Whether container c (with its state dict) passes every filter."""
        f, cfg = self.f, c.cfg
        if c.id in self.hidden:
            return False
        if "name" in f and not any(re.search(v.lstrip("/"), c.name) for v in f["name"]):
            return False
        if "id" in f and not any(c.id.startswith(v) for v in f["id"]):
            return False
        if self.is_task is True:  # no swarm here: no container is a task
            return False
        if not filterargs.labels_match({"label": f.get("label", [])}, cfg["Config"].get("Labels")):
            return False
        if self.exited and (state["Running"] or state["ExitCode"] not in self.exited
                            or not state.get("StartedAt") or state["StartedAt"].startswith("0001-")):
            return False
        if "status" in f and state["Status"] not in f["status"]:
            return False
        if "health" in f:
            health = (state.get("Health") or {}).get("Status") or "none"
            if health not in f["health"]:
                return False
        if "volume" in f:
            known = set()
            for m in cfg.get("Mounts") or []:
                known.add(m.get("Name") or m.get("Source"))
                known.add(m.get("Destination"))
            if not known & set(f["volume"]):
                return False
        if self.ancestors is not None and cfg["ImageID"] not in self.ancestors:
            return False
        return True

    def matches_network(self, c, summary):
        # type: (object, dict) -> bool
        """The filters on container c's ContainerSummary: network (name or id prefix),
        publish, expose (its ports, and the ports its config exposes)."""
        f = self.f
        if "network" in f:
            nets = (summary.get("NetworkSettings") or {}).get("Networks") or {}
            if not any(v in nets or any((n or {}).get("NetworkID", "").startswith(v) and v
                                        for n in nets.values()) for v in f["network"]):
                return False
        if self.publish or self.expose:
            ports = summary.get("Ports") or []
            published = {"%s/%s" % (p["PublicPort"], p.get("Type") or "tcp") for p in ports
                         if p.get("PublicPort")}
            exposed = {"%s/%s" % (p["PrivatePort"], p.get("Type") or "tcp") for p in ports}
            exposed |= {p if "/" in p else p + "/tcp"
                        for p in c.cfg["Config"].get("ExposedPorts") or {}}
            if not (self.publish & published or self.expose & exposed):
                return False
        return True

