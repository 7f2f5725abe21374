"""Docker's JSON views of a container: ContainerInspectResponse, ContainerSummary and the
human Status line ("Up 3 seconds", "Exited (0) 2 seconds ago")."""

import json
import os
import time

from runtime.container.mounts import public
from runtime.timefmt import parse_rfc3339
from runtime.units import human_duration


def status_line(state, now=None, started=None, finished=None):
    # type: (dict, float, Optional[float], Optional[float]) -> str
    """The Status column of `docker ps` (started, finished: StartedAt and FinishedAt already
    parsed, when they are)."""
    now = now or time.time()
    if finished is None and (state.get("Restarting") or state["Status"] == "exited"):
        finished = parse_rfc3339(state["FinishedAt"])
    if state.get("Restarting"):
        return "Restarting (%d) %s ago" % (state["ExitCode"], human_duration(now - finished))
    if state["Running"]:
        if started is None:
            started = parse_rfc3339(state["StartedAt"])
        up = "Up " + human_duration(now - started)
        if state["Paused"]:
            return up + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return up + " (health: starting)"
        return up + " (%s)" % health if health else up
    if state["Status"] == "exited":
        if not finished:
            return "Exited (%d)" % state["ExitCode"]
        return "Exited (%d) %s ago" % (state["ExitCode"], human_duration(now - finished))
    return state["Status"].capitalize()


def log_path(c):
    # type: (Container) -> str
    """LogPath: the json-file log ("" for the other drivers, as dockerd shows it)."""
    driver = (c.cfg["HostConfig"].get("LogConfig") or {}).get("Type") or "json-file"
    return c.file(c.id + "-json.log") if driver == "json-file" else ""


_PRIVATE = ("HostVeth", "Bridge", "NetworkName")

# The network view of a container that does not run (no endpoints, no ports), one for all;
# read only.
NO_NETVIEW = (None, {})  # type: tuple


def _endpoint(e=None):
    # type: (dict) -> dict
    out = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
           "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
           "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}
    if e:
        out.update((k, v) for k, v in e.items() if k not in _PRIVATE)
    return out


def network_settings(c, state, netview=NO_NETVIEW):
    # type: (Container, dict, tuple) -> dict
    """NetworkSettings: the live endpoints of a running bridged container (netview: the network
    service's endpoint state and the Ports map), else the networks it is configured for."""
    ep, port_map = netview
    ep = ep if state["Running"] else None
    hc = c.cfg["HostConfig"]
    mode = hc.get("NetworkMode") or "default"
    nets = {}
    if ep:
        for e in ep["Networks"].values():
            nets[e["NetworkName"]] = _endpoint(e)
    else:
        name = "bridge" if mode == "default" and c.cfg["NetworkMode"] == "bridge" else mode
        if not name.startswith("container:"):
            nets[name] = _endpoint()
        nc = c.cfg.get("NetworkingConfig") or {}
        for ref, settings in (nc.get("EndpointsConfig") or {}).items():
            settings = settings or {}
            nets[ref] = _endpoint({k: settings.get(k) for k in (  # (over the blank one of its mode)
                "IPAMConfig", "Aliases", "Links", "DriverOpts") if settings.get(k)})
            if settings.get("MacAddress"):
                nets[ref]["MacAddress"] = settings["MacAddress"]
        for name in nc.get("Left") or ():  # its mode's network, disconnected from
            nets.pop(name, None)
    first = nets.get("bridge") or (list(nets.values())[0] if nets else _endpoint())
    key = "/proc/%d/ns/net" % state["Pid"] if state["Pid"] else ""
    top = first if ep and "bridge" in nets else _endpoint()  # the top-level fields: the default bridge's
    ports = port_map if state["Running"] and c.cfg["NetworkMode"] == "bridge" else {}
    return {"Bridge": "", "SandboxID": "", "SandboxKey": key, "Ports": ports, "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": top["EndpointID"], "Gateway": top["Gateway"],
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": top["IPAddress"],
            "IPPrefixLen": top["IPPrefixLen"], "IPv6Gateway": "", "MacAddress": top["MacAddress"],
            "Networks": nets}


def summary_ports(ns):
    # type: (dict) -> list
    """ContainerSummary.Ports from NetworkSettings.Ports."""
    out = []
    for key, bound in sorted(ns["Ports"].items()):
        port, _, proto = key.partition("/")
        if not bound:
            out.append({"PrivatePort": int(port), "Type": proto})
        for b in bound or []:
            out.append({"IP": b["HostIp"], "PrivatePort": int(port), "PublicPort": int(b["HostPort"]),
                        "Type": proto})
    return out


def inspect(c, state, exec_ids, netview=NO_NETVIEW):
    # type: (Container, dict, list, tuple) -> dict
    """ContainerInspectResponse."""
    cfg = c.cfg
    driver = cfg.get("Driver") or "overlay2"
    graph = {"Name": "vfs", "Data": None} if driver == "vfs" else {"Name": "overlay2", "Data": {
        "LowerDir": ":".join(reversed(cfg.get("LayerDirs") or [])), "UpperDir": c.file("upper"),
        "MergedDir": os.path.join(os.path.dirname(c.path), ".rootfs"), "WorkDir": c.file("work")}}
    return {
        "Id": c.id, "Created": cfg["Created"], "Path": cfg["Path"], "Args": cfg["Args"], "State": state,
        "Image": cfg["ImageID"], "ResolvConfPath": c.file("resolv.conf"), "HostnamePath": c.file("hostname"),
        "HostsPath": c.file("hosts"), "LogPath": log_path(c), "Name": "/" + cfg["Name"],
        "RestartCount": c.started().get("RestartCount", 0), "Driver": driver, "Platform": "linux",
        "MountLabel": cfg.get("MountLabel") or "", "ProcessLabel": cfg.get("ProcessLabel") or "",
        "AppArmorProfile": cfg.get("AppArmorProfile") or "", "ExecIDs": exec_ids or None,
        "HostConfig": dict(cfg["HostConfig"], Runtime=cfg["HostConfig"].get("Runtime") or "runc"),
        "GraphDriver": graph,
        "Mounts": public(cfg["Mounts"]), "Config": cfg["Config"],
        "NetworkSettings": network_settings(c, state, netview),
    }


def summary(c, state, netview=NO_NETVIEW):
    # type: (Container, dict, tuple) -> dict
    """ContainerSummary."""
    cfg = c.cfg
    ns = network_settings(c, state, netview)
    return {
        "Id": c.id, "Names": ["/" + cfg["Name"]], "Image": cfg["Config"].get("Image", ""),
        "ImageID": cfg["ImageID"], "Command": " ".join([cfg["Path"]] + cfg["Args"]),
        "Created": int(parse_rfc3339(cfg["Created"])), "Ports": summary_ports(ns),
        "Labels": cfg["Config"].get("Labels") or {},
        "State": state["Status"], "Status": status_line(state),
        "HostConfig": {"NetworkMode": cfg["HostConfig"].get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": ns["Networks"]}, "Mounts": public(cfg["Mounts"]),
    }

class Summary(dict):
    """A ContainerSummary that carries its own JSON (`json_bytes`), which the API server
    sends instead of encoding the dict again (runtime/api/server.json_body). Setting or
    deleting a key drops it (`system df` adds SizeRw to the summaries it gets)."""

    json_bytes = None  # type: Optional[bytes]

    def __setitem__(self, key, value):
        # type: (str, object) -> None
        self.json_bytes = None
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        # type: (str) -> None
        self.json_bytes = None
        dict.__delitem__(self, key)

    def update(self, *args, **kw):  # type: ignore
        self.json_bytes = None
        dict.update(self, *args, **kw)


class EncodedSummary(object):
    """A ContainerSummary as its JSON only, for a reply (runtime/api/server.json_body): what
    `GET /containers/json` lists without filtering on the summary's content."""

    __slots__ = ("json_bytes",)

    def __init__(self, json_bytes):
        # type: (bytes) -> None
        self.json_bytes = json_bytes


class KeptSummary(object):
    """A container's ContainerSummary, kept until its state, config or (while it runs) network
    view changes (runtime/container/state.Container.keep_view): what a listing would compute
    again for each of 1,000s of containers is done once (the summary's JSON, the times parsed),
    and only the Status line ("Up 3 minutes", "Exited (0) 3 minutes ago") is made per listing.
    The summary is kept as JSON only (its dicts were ~1.4 kB a container) and made a dict again
    for a caller that reads it (`now()`, ~10 us); a reply takes the JSON (`now_json()`)."""

    __slots__ = ("state", "netview", "rest_json", "started", "finished")

    def __init__(self, c, state, netview=NO_NETVIEW):
        # type: (Container, dict, tuple) -> None
        self.state = state  # (nobody changes it: the container keeps it to compare)
        ep, port_map = netview
        # a copy to compare with later views: the network service changes its endpoint
        # records in place (a connect or a disconnect while the container runs)
        self.netview = netview if ep is None else (json.loads(json.dumps(ep)), port_map)
        rest = summary(c, state, netview)
        del rest["Status"]
        self.rest_json = json.dumps(rest).encode()  # "{...}" without the Status
        self.started = parse_rfc3339(state["StartedAt"]) if state["Running"] else None
        self.finished = None  # type: Optional[float]
        if state.get("Restarting") or state["Status"] == "exited":
            self.finished = parse_rfc3339(state["FinishedAt"])

    def _status(self):
        # type: () -> str
        return status_line(self.state, started=self.started, finished=self.finished)

    def now(self):
        # type: () -> Summary
        """The summary with its Status line as of now, and its JSON."""
        line = self._status()
        out = Summary(json.loads(self.rest_json.decode()))
        out["Status"] = line
        out.json_bytes = self._json(line)
        return out

    def now_json(self):
        # type: () -> EncodedSummary
        """The summary's JSON with its Status line as of now."""
        return EncodedSummary(self._json(self._status()))

    def _json(self, line):
        # type: (str) -> bytes
        return b'{"Status": ' + json.dumps(line).encode() + b", " + self.rest_json[1:]
