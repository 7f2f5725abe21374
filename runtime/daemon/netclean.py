"""`berthd --remove-network`: take away what the engine added to the host's network, for an
uninstall (dockerd's packages leave docker0 and its chains behind; we do not): the bridges of
the networks recorded under `<data-root>/network/`, the veths still plugged into them, the
namespace made ahead, our iptables chains and jumps, and the bridges' firewalld bindings (and
the `berth` zone once nothing is bound to it).

A default bridge named in daemon.json (`"bridge": NAME` other than berth0) is left in place:
like dockerd, berthd uses such a bridge when it already exists, so it may be the host's own.
Refuses to run while a berthd serves the configuration. Exit 0 when done, 1 otherwise."""

import os

from runtime.daemon import config as cfgmod
from runtime.errors import InvalidParameter
from runtime.network import firewall, links, records
from runtime.network import netlink as nl
from runtime.network.service import SPARE_VETH
from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import IO, Any, Dict, List, Tuple  # noqa: F401


def recorded_bridges(data_root):
    # type: (str) -> List[str]
    """The bridge names of the bridge networks recorded under data_root (none without records)."""
    path = os.path.join(data_root, "network", "networks.json")
    if not os.path.exists(path):
        return []
    return [records.bridge_name(r) for r in records.Records(path).bridges() if records.bridge_name(r)]


def remove_links(bridges):
    # type: (List[str]) -> Tuple[List[str], List[str]]
    """Delete these bridges (those that exist and are bridges), every veth plugged into them,
    and the spare veth; (bridges removed, veths removed)."""
    gone_bridges, gone_veths = [], []
    with nl.Netlink() as c:
        now = links.links(c)
        ours = {now[b]["index"] for b in bridges if b in now and now[b]["kind"] == "bridge"}
        for name, info in sorted(now.items()):
            if info["kind"] == "veth" and (info["master"] in ours or name == SPARE_VETH):
                if links.delete_link(c, name):
                    gone_veths.append(name)
        for name in bridges:
            if name in now and now[name]["index"] in ours and links.delete_link(c, name):
                gone_bridges.append(name)
    return gone_bridges, gone_veths


def main(cfg, out, err):
    # type: (Dict[str, Any], IO[str], IO[str]) -> int
    """Remove the engine's bridges, rules and firewalld bindings for configuration cfg."""
    live = cfgmod.serving_socket(cfg)
    if live:
        err.write("berthd: a berthd is serving on %s: stop it before --remove-network\n" % live)
        return 1
    data_root = os.path.abspath(cfg["data-root"])
    try:
        bcfg = records.bridge_config(cfg)
        found = recorded_bridges(data_root)
    except InvalidParameter as exc:
        err.write("berthd: %s\n" % exc)
        return 1
    except (ValueError, KeyError, TypeError) as exc:
        err.write("berthd: cannot read the network records under %s (%s): remove the engine's "
                  "bridges by hand (ip link del NAME)\n" % (data_root, exc))
        return 1
    wanted = [b for b in found if b != bcfg["bridge"] or b == records.DEFAULT_BRIDGE]
    if bcfg["bridge"] == records.DEFAULT_BRIDGE and records.DEFAULT_BRIDGE not in wanted:
        wanted.append(records.DEFAULT_BRIDGE)  # made before the records were lost
    kept = sorted(set(found) - set(wanted))
    try:
        bridges, veths = remove_links(wanted)
    except OSError as exc:
        err.write("berthd: cannot remove the engine's links: %s\n" % exc)
        return 1
    rules, failed = "removed", False
    try:  # also with iptables: false now: chains an earlier configuration made are ours too
        firewall.Firewall().remove()
    except firewall.FirewallError as exc:
        rules, failed = "left: %s" % exc, bcfg["iptables"]
    if firewall.firewalld_running():
        firewall.firewalld_unbind(wanted)
    out.write("bridges removed: %s; veths removed: %d; iptables chains %s%s\n" % (
        " ".join(sorted(bridges)) or "none", len(veths), rules,
        "; left in place (daemon.json bridge, maybe the host's own): " + " ".join(kept) if kept else ""))
    return 1 if failed else 0
