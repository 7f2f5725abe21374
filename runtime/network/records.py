"""Network records as Docker shows them (`GET /networks/{id}`), kept in one JSON file, and the
daemon.json keys of the default bridge."""

import binascii
import json
import os
import re
import time

from runtime.errors import InvalidParameter

DEFAULT_BRIDGE = "berth0"
NAME_RE = re.compile(r"^[^/\x00-\x1f]+$")
PREDEFINED = ("bridge", "host", "none")


def new_id():
    return binascii.hexlify(os.urandom(32)).decode()


def rfc3339_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


def record(name, driver, subnet=None, gateway=None, ip_range=None, internal=False, attachable=False,
           labels=None, options=None, bridge=None, net_id=None):
    """A new network record (Docker's inspect shape, without Containers)."""
    net_id = net_id or new_id()
    config = []
    if subnet:
        c = {"Subnet": str(subnet), "Gateway": str(gateway)}
        if ip_range:
            c["IPRange"] = str(ip_range)
        config.append(c)
    opts = dict(options or {})
    if bridge:
        opts["com.docker.network.bridge.name"] = bridge
    return {"Name": name, "Id": net_id, "Created": rfc3339_now(), "Scope": "local", "Driver": driver,
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": bool(internal), "Attachable": bool(attachable), "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": opts, "Labels": dict(labels or {})}


def bridge_name(rec):
    return rec["Options"].get("com.docker.network.bridge.name", "")


def check_name(name):
    if not name or not NAME_RE.match(name):
        raise InvalidParameter("invalid network name %r: give a name without '/' or control characters"
                               % name)


class Records(object):
    """Every network record, in `<data-root>/network/networks.json`."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path) as f:
                self.nets = json.load(f)
        except FileNotFoundError:
            self.nets = {}

    def save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.nets, f, indent=1, sort_keys=True)
        os.rename(tmp, self.path)

    def find(self, ref):
        """The record whose name, full id or unique id prefix is ref, or None."""
        if ref in self.nets:
            return self.nets[ref]
        for rec in self.nets.values():
            if rec["Name"] == ref:
                return rec
        hits = [rec for i, rec in self.nets.items() if ref and i.startswith(ref)]
        return hits[0] if len(hits) == 1 else None

    def add(self, rec):
        self.nets[rec["Id"]] = rec
        self.save()

    def remove(self, net_id):
        if self.nets.pop(net_id, None) is not None:
            self.save()

    def all(self):
        return list(self.nets.values())

    def bridges(self):
        """The records of the bridge networks (those that have a bridge on the host)."""
        return [r for r in self.nets.values() if r["Driver"] == "bridge"]


def bridge_config(config):
    """The default bridge's settings from daemon.json, checked."""
    out = {
        "bridge": config.get("bridge", DEFAULT_BRIDGE),
        "bip": config.get("bip") or "",
        "fixed-cidr": config.get("fixed-cidr") or "",
        "mtu": int(config.get("mtu") or 0),
        "iptables": config.get("iptables", True),
        "ip-forward": config.get("ip-forward", True),
        "ip-masq": config.get("ip-masq", True),
        "icc": config.get("icc", True),
        "default-address-pools": config.get("default-address-pools") or None,
        "dns": list(config.get("dns") or []),
        "dns-search": list(config.get("dns-search") or []),
        "dns-opts": list(config.get("dns-opts") or []),
        "host-gateway-ip": config.get("host-gateway-ip") or "",
    }
    if out["bridge"] != "none" and (not out["bridge"] or len(out["bridge"]) > 15 or "/" in out["bridge"]):
        raise InvalidParameter("daemon.json bridge %r: a link name of 1-15 characters, or none"
                               % out["bridge"])
    if out["mtu"] and not 68 <= out["mtu"] <= 65535:
        raise InvalidParameter("daemon.json mtu %d: give 68-65535" % out["mtu"])
    if config.get("userland-proxy"):
        raise InvalidParameter("daemon.json userland-proxy: true is not supported: published ports "
                               "reach containers through iptables and route_localnet (set it to false)")
    return out
