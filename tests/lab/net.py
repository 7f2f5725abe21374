"""The lab's private network: one bridge per lab, firewalled so nothing leaves it.

Hosts get static addresses 10.247.X.(10+n) with no gateway, so their route table has no way
out; on the machine side iptables drops anything forwarded into or out of the bridge and any
packet from the bridge to a machine address other than the bridge's own (where serve_dir
listens).
"""

import pathlib
import subprocess

from .paths import SUBNET_PREFIX
from .sysutil import run


MAX_HOSTS = 240


def bridge_name(lab_id: str) -> str:
    """The lab's bridge interface name (fits IFNAMSIZ)."""
    return f"bl-{lab_id}"


def bridge_ip(subnet: int) -> str:
    """The machine-side address on the bridge."""
    return f"{SUBNET_PREFIX}.{subnet}.1"


def host_ip(subnet: int, index: int) -> str:
    """Address of host number `index` (1-based)."""
    if not 1 <= index <= MAX_HOSTS:
        raise ValueError(f"host index {index} out of range 1..{MAX_HOSTS}")
    return f"{SUBNET_PREFIX}.{subnet}.{10 + index}"


def subnets_in_use() -> set:
    """X values of 10.247.X.0/24 already configured on any machine interface."""
    out = run(["ip", "-4", "-o", "addr", "show"]).stdout
    used = set()
    for word in out.split():
        if word.startswith(SUBNET_PREFIX + "."):
            used.add(int(word.split(".")[2]))
    return used


def forget_neighbour(bridge: str, ip: str) -> None:
    """Drop the machine's ARP entry for `ip` (a reused address now has a new MAC)."""
    subprocess.run(["ip", "neigh", "flush", "dev", bridge, "to", ip], stderr=subprocess.DEVNULL)


def link_exists(name: str) -> bool:
    """True if a network interface of that name exists on the machine."""
    return pathlib.Path(f"/sys/class/net/{name}").exists()


def bridge_mac(subnet: int) -> str:
    """The bridge's own MAC, fixed: left to the kernel, a bridge takes its lowest port's MAC and
    changes it when that host leaves, and the hosts still up keep the old one in their ARP
    caches (their traffic to the machine side is lost until the entries expire)."""
    return f"02:6c:61:62:{subnet:02x}:01"


def create_bridge(name: str, subnet: int) -> None:
    """Create the bridge with its address (IPv6 off: nothing should autoconfigure)."""
    run(["ip", "link", "add", name, "address", bridge_mac(subnet), "type", "bridge"])
    try:
        pathlib.Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
    except OSError:
        pass
    run(["ip", "addr", "add", f"{bridge_ip(subnet)}/24", "dev", name])
    run(["ip", "link", "set", name, "up"])


def delete_bridge(name: str) -> None:
    """Delete the bridge if it exists."""
    if link_exists(name):
        run(["ip", "link", "del", name], check=False)


def _tag(lab_id: str) -> str:
    return f"berth-lab:{lab_id}"


def firewall_rules(lab_id: str, bridge: str, subnet: int) -> list:
    """The iptables rules (table filter) that fence the lab in, as (chain, args) pairs."""
    c = ["-m", "comment", "--comment", _tag(lab_id)]
    return [
        ("FORWARD", ["-i", bridge, "-o", bridge, *c, "-j", "ACCEPT"]),
        ("FORWARD", ["-i", bridge, *c, "-j", "DROP"]),
        ("FORWARD", ["-o", bridge, *c, "-j", "DROP"]),
        ("INPUT", ["-i", bridge, "!", "-d", bridge_ip(subnet), *c, "-j", "DROP"]),
    ]


def add_firewall(lab_id: str, bridge: str, subnet: int) -> None:
    """Insert the lab's rules at the top of FORWARD and INPUT, in order."""
    rules = firewall_rules(lab_id, bridge, subnet)
    for chain, args in reversed(rules):
        run(["iptables", "-w", "-I", chain, "1", *args])


def lab_rules(lab_id: str) -> list:
    """The lab's rules currently installed, as `iptables -S` lines."""
    out = run(["iptables", "-w", "-S"]).stdout
    return [line for line in out.splitlines()
            if line.startswith("-A ") and (f'"{_tag(lab_id)}"' in line or f" {_tag(lab_id)} " in line
                                          or line.endswith(f" {_tag(lab_id)}"))]


def remove_firewall(lab_id: str) -> None:
    """Delete every rule tagged with this lab's comment."""
    for line in lab_rules(lab_id):
        # `iptables -S` output is shell-quoted; the tag has no spaces, so split + unquote works
        args = [a.strip('"') for a in line.split()]
        args[0] = "-D"
        subprocess.run(["iptables", "-w", *args], stderr=subprocess.DEVNULL)
