"""IPv4 address management: one pool per network, allocations persisted in one JSON file.

The file (`<data-root>/network/ipam.json`) maps a network id to its pool and the addresses
handed out, each with its owner (an endpoint: a container id), so that a restarted daemon keeps
them and can release those whose owner is gone (reconcile)."""

import ipaddress
import json
import os
import threading

from runtime.errors import Conflict, InvalidParameter, NotFound

# dockerd's defaults: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s
DEFAULT_POOLS = [{"base": "172.17.0.0/16", "size": 16}, {"base": "172.18.0.0/16", "size": 16},
                 {"base": "172.19.0.0/16", "size": 16}, {"base": "172.20.0.0/14", "size": 16},
                 {"base": "172.24.0.0/14", "size": 16}, {"base": "172.28.0.0/14", "size": 16},
                 {"base": "192.168.0.0/16", "size": 20}]


def candidate_subnets(pools):
    """Every subnet the address pools offer, in order."""
    for pool in pools:
        try:
            base = ipaddress.ip_network(pool["base"])
            size = int(pool["size"])
        except (KeyError, ValueError, TypeError):
            raise InvalidParameter("default-address-pools: %r is not {\"base\": CIDR, \"size\": N}"
                                   % (pool,)) from None
        if base.version != 4 or size < base.prefixlen or size > 30:
            raise InvalidParameter("default-address-pools: size %s does not fit in %s" % (size, base))
        for sub in base.subnets(new_prefix=size):
            yield sub


def overlapping(subnet, taken):
    """The first network of taken that overlaps subnet, or None."""
    for other in taken:
        if subnet.overlaps(other):
            return other
    return None


class Ipam(object):
    """Pools and allocations of every network; thread-safe; every change is written through."""

    def __init__(self, path, persist_allocations=True):
        """persist_allocations=False: only pools are written here, and the owner of the
        allocations (the network service: each endpoint file holds its addresses) claims them
        again at load. Rewriting this file per start cost 15 ms on a busy ext4 (a rename over an
        existing file waits for its data to be written)."""
        self.path = path
        self.persist_allocations = persist_allocations
        self.lock = threading.Lock()
        try:
            with open(path) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            self.state = {}

    def _save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, sort_keys=True)
        os.rename(tmp, self.path)

    def pool(self, net_id):
        """{"Subnet", "Gateway", "IPRange"} of a network, or None."""
        p = self.state.get(net_id)
        return None if p is None else {k: p[k] for k in ("Subnet", "Gateway", "IPRange")}

    def add_pool(self, net_id, subnet, gateway=None, ip_range=None, taken=(), aux=None):
        """Register a network's pool; subnet must not overlap any of taken (other networks, host
        routes). Returns the pool (Gateway defaults to the first address)."""
        try:
            net = ipaddress.ip_network(subnet)
        except ValueError:
            raise InvalidParameter("invalid subnet %s: give an IPv4 CIDR such as 10.1.0.0/24"
                                   % subnet) from None
        if net.version != 4 or net.prefixlen > 30:
            raise InvalidParameter("subnet %s: IPv4 with a prefix of at most /30 is supported" % subnet)
        other = overlapping(net, taken)
        if other is not None:
            raise Conflict("subnet %s overlaps %s, which is in use: choose another --subnet" % (net, other))
        gw = ipaddress.ip_address(gateway) if gateway else net.network_address + 1
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidParameter("gateway %s is not a host address in subnet %s" % (gateway, net))
        rng = None
        if ip_range:
            try:
                rng = ipaddress.ip_network(ip_range)
            except ValueError:
                raise InvalidParameter("invalid ip-range %s: give a CIDR inside %s"
                                       % (ip_range, net)) from None
            if not (rng.network_address in net and rng.broadcast_address in net):
                raise InvalidParameter("ip-range %s is not inside subnet %s" % (rng, net))
        reserved = {}
        for key, ip in (aux or {}).items():
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                raise InvalidParameter("invalid auxiliary address %s=%s" % (key, ip)) from None
            if addr not in net:
                raise InvalidParameter("auxiliary address %s=%s is not in subnet %s" % (key, ip, net))
            reserved[str(addr)] = "aux:" + key
        with self.lock:
            self.state[net_id] = {"Subnet": str(net), "Gateway": str(gw),
                                  "IPRange": str(rng) if rng else "", "Allocated": {}, "Reserved": reserved}
            self._save()
        return self.pool(net_id)

    def remove_pool(self, net_id):
        with self.lock:
            if self.state.pop(net_id, None) is not None:
                self._save()

    def allocate(self, net_id, owner, ip=None):
        """An address for owner on net_id: ip if given (it must be free and in the subnet), else the
        lowest free one in the ip-range (or subnet). Returns the address as a string."""
        with self.lock:
            p = self.state.get(net_id)
            if p is None:
                raise NotFound("network %s has no address pool" % net_id)
            net = ipaddress.ip_network(p["Subnet"])
            used = p["Allocated"]
            reserved = {p["Gateway"], str(net.network_address), str(net.broadcast_address)}
            reserved.update(p.get("Reserved") or {})
            if ip:
                try:
                    addr = ipaddress.ip_address(ip)
                except ValueError:
                    raise InvalidParameter("invalid IP address %s" % ip) from None
                if addr not in net:
                    raise InvalidParameter("address %s is not in the network's subnet %s" % (ip, net))
                if str(addr) in reserved or str(addr) in used:
                    raise Conflict("address %s is already in use on this network" % ip)
                chosen = str(addr)
            else:
                chosen = None
                for addr in ipaddress.ip_network(p["IPRange"] or p["Subnet"]):
                    s = str(addr)
                    if s not in reserved and s not in used:
                        chosen = s
                        break
                if chosen is None:
                    raise Conflict("no address left in %s" % (p["IPRange"] or p["Subnet"]))
            used[chosen] = owner
            self._changed()
            return chosen

    def claim(self, net_id, ip, owner):
        """Record an allocation made before (a restarted daemon reading its endpoints)."""
        with self.lock:
            p = self.state.get(net_id)
            if p is not None:
                p["Allocated"][ip] = owner

    def _changed(self):
        if self.persist_allocations:
            self._save()

    def release(self, net_id, ip):
        with self.lock:
            p = self.state.get(net_id)
            if p is not None and p["Allocated"].pop(ip, None) is not None:
                self._changed()

    def release_owner(self, owner):
        """Release every address of owner (a removed container) on every network."""
        self.reconcile(lambda o: o != owner)

    def allocations(self, net_id):
        """{address: owner} on net_id."""
        with self.lock:
            p = self.state.get(net_id)
            return dict(p["Allocated"]) if p else {}

    def reconcile(self, keep):
        """Release every allocation whose owner keep(owner) rejects; the released (net, ip) pairs."""
        gone = []
        with self.lock:
            for net_id, p in self.state.items():
                for ip, owner in list(p["Allocated"].items()):
                    if not keep(owner):
                        del p["Allocated"][ip]
                        gone.append((net_id, ip))
            if gone:
                self._changed()
        return gone

    def subnets(self):
        return [ipaddress.ip_network(p["Subnet"]) for p in self.state.values()]

    def pick_subnet(self, pools, taken):
        """The first subnet of the address pools that overlaps neither taken nor a known pool."""
        busy = list(taken) + self.subnets()
        for sub in candidate_subnets(pools):
            if overlapping(sub, busy) is None:
                return sub
        raise Conflict("all predefined address pools have been fully subnetted: add "
                       "default-address-pools in daemon.json or give --subnet")
