"""NetworkService: the daemon's networks (the default bridge, user bridges, host, none), each
container's endpoints on them, published ports, the firewall and the embedded resolver.

State under `<data-root>/network/`: networks.json (records), ipam.json (pools, addresses),
endpoints/<container id>.json (what a running container holds: veths, addresses, host ports).
Nothing is touched until the first use (a bridge container, a network command), and the host's
sysctls and iptables only once a bridge network exists: a daemon with `bridge: none` whose
containers all use `none` or `host` never makes a link, a rule or a sysctl change."""

import errno
import logging
import os
import socket
import threading

from runtime.errors import Conflict, Forbidden, InvalidParameter, NotFound
from runtime.network import conntrack, dns, etcfiles, firewall, ipam, links, netns, ports, records
from runtime.network import netlink as nl

log = logging.getLogger("berthd")


SPARE_VETH = "berth-spare"  # the host end of the namespace made ahead, until a start takes it


def _published_addresses(ep):
    """The container addresses an endpoint's published ports translate to."""
    return {p["ContainerIP"] for p in ep.get("Ports") or []}


def _forget_flows(addresses):
    """The kernel forgets the tracked flows to addresses whose published ports are gone (after
    their rules, so that no packet of those flows is translated to them again). Only where ports
    were published: the dump walks the machine's whole conntrack hash (10-20 ms measured here
    with 262,144 buckets), too much for every `run --rm`, and without a translation a stale
    flow misleads no one."""
    addresses = sorted(addresses)
    if not addresses:
        return
    try:
        conntrack.forget(addresses)
    except OSError as e:
        log.warning("could not forget the tracked connections of %s: %s", ", ".join(addresses), e)


def _nl(fd=None):
    if fd is None:
        return nl.Netlink()
    return nl.Netlink(netns.socket_in(fd, socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ROUTE))


def _sysctl(path, value):
    """Write a /proc/sys value if it differs; the old value, or None if there is no such file."""
    try:
        with open(path) as f:
            old = f.read().strip()
        if old != value:
            with open(path, "w") as f:
                f.write(value)
        return old
    except FileNotFoundError:
        return None


def _link_rules(ep):
    """Whether an endpoint's legacy links have firewall rules (icc off)."""
    return any(k["Ports"] for k in ep.get("LegacyLinks") or [])


class NetworkService(object):
    """Networks and endpoints. lock guards everything; the container side calls attach() on
    start and detach() on exit, reconcile() once at daemon start."""

    def __init__(self, data_root, config, iptables="iptables"):
        self.root = os.path.join(data_root, "network")
        self.cfg = records.bridge_config(config)
        self.lock = threading.RLock()
        self.records = records.Records(os.path.join(self.root, "networks.json"))
        self.ipam = ipam.Ipam(os.path.join(self.root, "ipam.json"), persist_allocations=False)
        self.fw = firewall.Firewall(iptables, self.cfg["ip-masq"]) if self.cfg["iptables"] else None
        self.reservations = ports.PortReservations()
        self.endpoints = {}  # container id -> endpoint state (as in endpoints/<id>.json)
        self.ready = False
        self.host_ready = False  # the sysctls and rules bridges need are in place (_host_side)
        self.resolver = None
        self.spare = None  # (namespace fd, its pre-plugged host veth or None), made ahead
        self.spare_lock = threading.Lock()
        self.spare_busy = False
        self.closed = False
        self.fw_stop = threading.Event()
        self._load_endpoints()

    # ---- set-up -------------------------------------------------------------------------

    def default_mode(self):
        """What NetworkMode "default" means: "bridge", or "none" with daemon.json bridge: none."""
        return "none" if self.cfg["bridge"] == "none" else "bridge"

    def ensure(self):
        """Predefined records, bridges, sysctls and rules, once (idempotent)."""
        with self.lock:
            if self.ready:
                return
            self._predefined()
            for rec in self.records.bridges():
                self._make_bridge(rec)
            self.ready = True
            self._host_side()

    def _host_side(self):
        """What bridges need of the host (ip_forward, bridge-nf-call-iptables, our chains and
        the watch on them), once, from the first bridge network on: a daemon with `bridge:
        none` and no user network leaves the host's sysctls and iptables as they were."""
        if self.host_ready or not self.records.bridges():
            return
        self.host_ready = True
        if self.cfg["ip-forward"]:
            old = _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
            if old == "0" and self.fw is not None:
                self.fw.forward_drop = True  # as dockerd: forwarding on, but only for our bridges
        if self.fw is not None:
            _sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables", "1")
        try:
            self._apply_firewall()
        except BaseException:
            self.host_ready = False  # the next bridge network tries again
            raise
        if self.fw is not None:
            threading.Thread(target=self._watch_firewall, name="berth-fwwatch", daemon=True).start()

    def _watch_firewall(self, interval=1.0):
        """Put our rules back when something took them away: a `firewall-cmd --reload` or a
        restart of firewalld (with its iptables back end it flushes every table, then rebuilds
        its own chains) or an administrator's `iptables -F` of one table or all. Polled with one
        `iptables -C` per table (our FORWARD and POSTROUTING jumps) per interval (a fork and exec
        each, ~3 ms of CPU), not by listening to firewalld's D-Bus `Reloaded` signal as dockerd
        does: the standard library has no D-Bus client, a `dbus-monitor` child would outlive a
        berthd killed with SIGKILL, and the poll also sees the flushes that firewalld does not
        announce. The bridges' zone bindings are
        permanent, so a reload keeps them; they are checked again after the rules are back."""
        while not self.fw_stop.wait(interval):
            if self.fw.intact():
                continue
            with self.lock:
                if self.closed:
                    return
                self.fw.check_jumps()
                try:
                    self._apply_firewall()
                except firewall.FirewallError as e:
                    log.warning("our iptables rules are gone and could not be put back: %s", e)
                    continue
                log.info("our iptables rules were gone (a firewalld reload or a flush): put back")
                bridges = [records.bridge_name(r) for r in self.records.bridges()]
            if firewall.firewalld_running():  # a few firewall-cmd runs: not under the lock
                firewall.firewalld_zone(bridges)

    def _predefined(self):
        names = {r["Name"] for r in self.records.all()}
        for name in ("host", "none"):
            if name not in names:
                self.records.add(records.record(name, name if name == "host" else "null"))
        if self.cfg["bridge"] != "none" and "bridge" not in names:
            subnet, gateway = self._default_subnet()
            rec = records.record("bridge", "bridge", subnet, gateway, self.cfg["fixed-cidr"] or None,
                                 bridge=self.cfg["bridge"], options={
                                     "com.docker.network.bridge.default_bridge": "true",
                                     "com.docker.network.bridge.enable_icc": str(self.cfg["icc"]).lower(),
                                     "com.docker.network.bridge.enable_ip_masquerade":
                                         str(self.cfg["ip-masq"]).lower(),
                                     "com.docker.network.driver.mtu": str(self.cfg["mtu"] or 1500)})
            self.ipam.add_pool(rec["Id"], subnet, gateway, self.cfg["fixed-cidr"] or None)
            self.records.add(rec)

    def _default_subnet(self):
        if self.cfg["bip"]:
            import ipaddress
            try:
                iface = ipaddress.ip_interface(self.cfg["bip"])
            except ValueError:
                raise InvalidParameter("daemon.json bip %r: give ADDRESS/PREFIX such as 172.17.0.1/16"
                                       % self.cfg["bip"]) from None
            return iface.network, iface.ip
        with _nl() as c:
            idx = links.link_index(c, self.cfg["bridge"])
            if idx is not None:  # an existing bridge keeps its address
                for addr in links.addresses(c, idx):
                    return addr.network, addr.ip
        pools = self.cfg["default-address-pools"] or ipam.DEFAULT_POOLS
        sub = self.ipam.pick_subnet(pools, self._host_routes())
        return sub, sub.network_address + 1

    def _host_routes(self):
        ours = {records.bridge_name(r) for r in self.records.all()}
        with _nl() as c:
            names = {v["index"]: k for k, v in links.links(c).items()}
            return [dst for dst, oif in links.routes(c) if dst.prefixlen > 0 and names.get(oif) not in ours]

    def _make_bridge(self, rec):
        name = records.bridge_name(rec)
        cfg = rec["IPAM"]["Config"][0]
        mtu = int(rec["Options"].get("com.docker.network.driver.mtu") or 0) or None
        with _nl() as c:
            idx = links.add_bridge(c, name, mtu, mac=links.mac_for(cfg["Gateway"]))
            prefix = cfg["Subnet"].split("/")[1]
            links.add_address(c, idx, "%s/%s" % (cfg["Gateway"], prefix))
        if self.fw is not None:
            _sysctl("/proc/sys/net/ipv4/conf/%s/route_localnet" % name, "1")
            if firewall.firewalld_running():
                firewall.firewalld_zone([name])

    def _apply_firewall(self):
        if self.fw is None or not self.host_ready:
            return
        nets, pubs = [], []
        for rec in self.records.bridges():
            nets.append(firewall.Net(
                records.bridge_name(rec), rec["IPAM"]["Config"][0]["Subnet"], rec["Internal"],
                rec["Options"].get("com.docker.network.bridge.enable_icc", "true") == "true",
                rec["Options"].get("com.docker.network.bridge.enable_ip_masquerade", "true") == "true"))
        link_rules = []
        for ep in self.endpoints.values():
            for p in ep.get("Ports") or []:
                pubs.append(firewall.Published(p["Bridge"], p["ContainerIP"], p["Proto"], p["HostIp"],
                                               p["HostPort"], p["ContainerPort"]))
            for k in ep.get("LegacyLinks") or []:
                link_rules += [firewall.LinkRule(k["Bridge"], k["ParentIP"], k["IPAddress"], proto, port)
                               for proto, port in k["Ports"]]
        self.fw.apply(nets, pubs, link_rules)

    # ---- networks -----------------------------------------------------------------------

    def get(self, ref):
        """The record of network ref (name, id or id prefix), or NotFound."""
        with self.lock:
            self.ensure()
            rec = self.records.find(ref)
            if rec is None:
                raise NotFound("network %s not found" % ref)
            return rec

    def inspect(self, ref):
        rec = dict(self.get(ref))
        rec["Containers"] = {}
        with self.lock:
            for cid, ep in self.endpoints.items():
                e = ep["Networks"].get(rec["Id"])
                if e:
                    rec["Containers"][cid] = {"Name": ep["Name"], "EndpointID": e["EndpointID"],
                                              "MacAddress": e["MacAddress"], "IPv4Address":
                                              "%s/%d" % (e["IPAddress"], e["IPPrefixLen"]), "IPv6Address": ""}
        return rec

    def list(self):
        with self.lock:
            self.ensure()
            return [self.inspect(r["Id"]) for r in self.records.all()]

    def create(self, name, driver="bridge", subnet=None, gateway=None, ip_range=None, internal=False,
               attachable=False, labels=None, options=None, aux=None, ipam_options=None):
        """A user-defined bridge network; its record."""
        records.check_name(name)
        driver = driver or "bridge"
        if driver != "bridge":
            raise InvalidParameter("network driver %r is not supported: use bridge" % driver)
        for key in (options or {}):
            if key not in ("com.docker.network.bridge.name", "com.docker.network.driver.mtu",
                           "com.docker.network.bridge.enable_icc",
                           "com.docker.network.bridge.enable_ip_masquerade"):
                raise InvalidParameter("network option %r is not supported" % key)
        with self.lock:
            self.ensure()
            if name in records.PREDEFINED or any(r["Name"] == name for r in self.records.all()):
                raise Conflict("network with name %s already exists" % name)
            taken = self._host_routes()
            rec = records.record(name, driver, internal=internal, attachable=attachable, labels=labels,
                                 options=options)
            if not subnet:
                if gateway or ip_range:
                    raise InvalidParameter("--gateway and --ip-range need --subnet")
                subnet = self.ipam.pick_subnet(self.cfg["default-address-pools"] or ipam.DEFAULT_POOLS, taken)
            pool = self.ipam.add_pool(rec["Id"], subnet, gateway, ip_range, taken=taken + self.ipam.subnets(),
                                      aux=aux)
            rec["IPAM"]["Config"] = [dict((k, v) for k, v in (("Subnet", pool["Subnet"]),
                                     ("Gateway", pool["Gateway"]), ("IPRange", pool["IPRange"]),
                                     ("AuxiliaryAddresses", aux)) if v)]
            rec["IPAM"]["Options"] = ipam_options or None
            rec["Options"].setdefault("com.docker.network.bridge.name", "br-" + rec["Id"][:12])
            try:
                self._make_bridge(rec)
                self.records.add(rec)
                if self.host_ready:
                    self._apply_firewall()
                else:
                    self._host_side()  # the first bridge network of a `bridge: none` daemon
            except BaseException:
                self.records.remove(rec["Id"])
                self.ipam.remove_pool(rec["Id"])
                with _nl() as c:
                    links.delete_link(c, records.bridge_name(rec))
                raise
            return rec

    def remove(self, ref):
        with self.lock:
            rec = self.get(ref)
            if rec["Name"] in records.PREDEFINED:
                raise Forbidden("%s is a pre-defined network and cannot be removed" % rec["Name"])
            users = [ep["Name"] for ep in self.endpoints.values() if rec["Id"] in ep["Networks"]]
            if users:
                raise Conflict("error while removing network: network %s id %s has active endpoints (%s)"
                               % (rec["Name"], rec["Id"], ", ".join(users)))
            self.records.remove(rec["Id"])
            self.ipam.remove_pool(rec["Id"])
            with _nl() as c:
                links.delete_link(c, records.bridge_name(rec))
            self._apply_firewall()
            if self.fw is not None and firewall.firewalld_running():
                firewall.firewalld_zone([], [records.bridge_name(rec)])

    def prune(self, in_use):
        """Remove user networks no container uses (in_use: network ids named by any container)."""
        gone = []
        with self.lock:
            self.ensure()
            for rec in self.records.all():
                if rec["Name"] in records.PREDEFINED or rec["Id"] in in_use:
                    continue
                if any(rec["Id"] in ep["Networks"] for ep in self.endpoints.values()):
                    continue
                self.remove(rec["Id"])
                gone.append(rec["Name"])
        return gone

    # ---- endpoints ----------------------------------------------------------------------

    def _load_endpoints(self):
        d = os.path.join(self.root, "endpoints")
        if not os.path.isdir(d):
            return
        import json
        for fn in os.listdir(d):
            if fn.endswith(".json"):
                try:
                    with open(os.path.join(d, fn)) as f:
                        self.endpoints[fn[:-5]] = json.load(f)
                except (OSError, ValueError):
                    continue
                for e in self.endpoints[fn[:-5]]["Networks"].values():
                    self.ipam.claim(e["NetworkID"], e["IPAddress"], fn[:-5])

    def _save_endpoint(self, cid):
        import json
        d = os.path.join(self.root, "endpoints")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, cid + ".json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.endpoints[cid], f)
        os.rename(tmp, path)

    def _drop_endpoint(self, cid):
        self.endpoints.pop(cid, None)
        try:
            os.unlink(os.path.join(self.root, "endpoints", cid + ".json"))
        except FileNotFoundError:
            pass

    def resolve_networks(self, mode, endpoints_config):
        """[(record, EndpointSettings)] a container joins at start, mode first."""
        with self.lock:
            out = []
            name = "bridge" if mode in ("default", "bridge") else mode
            first = self.get(name)
            if first["Driver"] != "bridge":
                return []
            cfgs = dict(endpoints_config or {})
            out.append((first, cfgs.pop(name, None) or cfgs.pop(first["Id"], None) or {}))
            for ref, settings in cfgs.items():
                rec = self.get(ref)
                if rec["Id"] != first["Id"]:
                    out.append((rec, settings or {}))
            return out

    # ---- a namespace made ahead ---------------------------------------------------------

    def take_netns(self):
        """(fd, host veth) for a container to start: the namespace made ahead, with `eth0` already
        in it and its host end on the default bridge (down, renamed to its own name now), or a
        fresh namespace and None. The caller has the next one made (spare_later()) once the
        start is wired, so the namespace (~3 ms) and the veth (~5 ms) are off the start path."""
        with self.spare_lock:
            spare, self.spare = self.spare, None
        if spare is None:
            spare = (netns.create(), None)
        elif spare[1] is not None:
            name = "veth" + records.new_id()[:7]
            try:
                with _nl() as c:
                    links.set_link(c, links.link_index(c, spare[1]), name=name)
                spare = (spare[0], name)
            except OSError:
                spare = (spare[0], None)  # the veth dies with the namespace if unused
        return spare

    def spare_later(self):
        """Make the next start's namespace and veth in a background thread (unless one is made
        or being made). Called after a start's wiring, not when the namespace is taken: made
        meanwhile, it would hold the kernel's rtnl lock while that start's netlink requests
        wait for it (bench/net_links.py, load ~50: the network part of a start 5.6 -> 2.4 ms)."""
        with self.spare_lock:
            if self.closed or self.spare_busy or self.spare is not None:
                return
            self.spare_busy = True
        threading.Thread(target=self._make_spare, name="berth-netns-spare", daemon=True).start()

    def _make_spare(self):
        fd, veth = None, None
        try:
            fd = netns.create()
            rec = self.records.find("bridge") if self.ready else None
            if rec is not None and rec["Driver"] == "bridge":
                mtu = int(rec["Options"].get("com.docker.network.driver.mtu") or 0) or None
                with _nl() as c:
                    br = links.link_index(c, records.bridge_name(rec))
                    if br is not None:
                        links.add_veth(c, SPARE_VETH, "eth0", fd, master=br, mtu=mtu, up=False)
                        veth = SPARE_VETH
            with self.spare_lock:
                if not self.closed:
                    self.spare, fd = (fd, veth), None
        except OSError:
            pass  # the start makes its own
        finally:
            if fd is not None:
                os.close(fd)
            with self.spare_lock:
                self.spare_busy = False

    def attach(self, cid, cname, netns_fd, joins, hostconfig, exposed, veth=None, links=()):
        """Connect a container's namespace to its networks and publish its ports (all or nothing).
        joins: resolve_networks()'s list; veth: the host end of an `eth0` already in the
        namespace (take_netns); links: legacy links on the default bridge, [(container id,
        name, alias, [(proto, port)])]. Returns the endpoint state."""
        with self.lock:
            self.ensure()
            ep = {"Name": cname, "Networks": {}, "Ports": [], "Veths": [veth] if veth else []}
            self.endpoints[cid] = ep
            try:
                for i, (rec, settings) in enumerate(joins):
                    self._join(cid, ep, rec, settings, netns_fd, "eth%d" % i, default_route=(i == 0),
                               plugged=veth if i == 0 else None)
                if veth and not joins:
                    with _nl() as c:
                        links.delete_link(c, veth)
                    ep["Veths"] = []
                bindings, publish_all = hostconfig.get("PortBindings"), hostconfig.get("PublishAllPorts")
                if (bindings or publish_all) and joins:
                    self._publish(ep, joins[0][0], bindings, publish_all, exposed)
                if links:
                    self._link(ep, joins, links)
                if hostconfig.get("Dns"):
                    ep["Dns"] = list(hostconfig["Dns"])
                if any(rec["Name"] != "bridge" for rec, _ in joins):
                    self._serve_dns(cid, netns_fd, hostconfig)
                self._save_endpoint(cid)
                if ep["Ports"] or _link_rules(ep):
                    self._apply_firewall()
            except BaseException:
                self._undo(cid, ep)
                raise
            return ep

    def _link(self, ep, joins, links):
        """ep["LegacyLinks"]: each linked container's address on the default bridge, and the
        ports to let through when that bridge has icc off."""
        rec = next((r for r, _ in joins if r["Name"] == "bridge"), None)
        if rec is None:
            return
        icc = rec["Options"].get("com.docker.network.bridge.enable_icc", "true") == "true"
        mine = ep["Networks"][rec["Id"]]
        out = []
        for child_id, name, alias, child_ports in links:
            e = (self.endpoints.get(child_id) or {"Networks": {}})["Networks"].get(rec["Id"])
            if e is None:
                raise Conflict("cannot link to container %s as %s: it is not on the default bridge "
                               "network (start it there first, or use a user network and its names)"
                               % (name, alias))
            out.append({"Id": child_id, "Alias": alias, "IPAddress": e["IPAddress"],
                        "Bridge": mine["Bridge"], "ParentIP": mine["IPAddress"],
                        "Ports": [] if icc else [list(p) for p in child_ports]})
        ep["LegacyLinks"] = out

    def _join(self, cid, ep, rec, settings, netns_fd, ifname, default_route, plugged=None):
        pool = self.ipam.pool(rec["Id"])
        ipam_cfg = settings.get("IPAMConfig") or {}
        want_ip = ipam_cfg.get("IPv4Address") or ""
        if want_ip and rec["Name"] == "bridge":
            raise InvalidParameter("user specified IP address is supported on user defined networks only")
        mac = links.parse_mac(settings["MacAddress"]) if settings.get("MacAddress") else None
        ip = self.ipam.allocate(rec["Id"], cid, want_ip or None)
        prefix = int(pool["Subnet"].split("/")[1])
        mac = mac or links.mac_for(ip)
        host_veth = plugged or "veth" + records.new_id()[:7]
        e = {"NetworkID": rec["Id"], "EndpointID": records.new_id(), "Gateway": pool["Gateway"],
             "IPAddress": ip, "IPPrefixLen": prefix, "MacAddress": mac, "IPv6Gateway": "",
             "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAMConfig": ipam_cfg or None,
             "Links": list(settings.get("Links") or []) or None, "DriverOpts": settings.get("DriverOpts"),
             "Aliases": list(settings.get("Aliases") or []) if rec["Name"] != "bridge" else None,
             "DNSNames": None, "HostVeth": host_veth, "Bridge": records.bridge_name(rec),
             "NetworkName": rec["Name"]}
        if rec["Name"] != "bridge":
            e["DNSNames"] = [ep["Name"].lstrip("/"), cid[:12]] + list(settings.get("Aliases") or [])
        ep["Networks"][rec["Id"]] = e
        if not plugged:
            ep["Veths"].append(host_veth)
        mtu = int(rec["Options"].get("com.docker.network.driver.mtu") or 0) or None
        with _nl() as host:
            br = links.link_index(host, e["Bridge"])
            if br is None:
                raise Conflict("bridge %s of network %s is missing: restart berthd to recreate it"
                               % (e["Bridge"], rec["Name"]))
            if plugged:  # made ahead on the default bridge: onto this one, with this MTU, up
                links.set_link(host, links.link_index(host, host_veth), master=br, mtu=mtu, up=True)
            else:
                links.add_veth(host, host_veth, ifname, netns_fd, master=br, mtu=mtu, peer_mac=mac)
            if self.fw is not None:
                links.set_hairpin(host, links.link_index(host, host_veth))
            with _nl(netns_fd) as c:
                idx = links.link_index(c, ifname)
                if plugged:
                    links.set_link(c, idx, mtu=mtu, mac=mac)
                links.add_address(c, idx, "%s/%d" % (ip, prefix))
                links.set_up(c, idx)
                if default_route and not rec["Internal"]:
                    links.add_default_route(c, pool["Gateway"], idx)
            # so that the container's first packets are neither dropped nor held:
            for name in (host_veth, e["Bridge"]):
                if not links.wait_operational(host, name):
                    log.warning("link %s of network %s is not up after 2 s", name, rec["Name"])
            # The host knows the container's MAC: no ARP to wait for. Above all when the address
            # was just released: the old holder's flows could have left the host resolving it,
            # and the new holder's first packets then waited behind that, up to a second.
            try:
                links.set_neighbour(host, br, ip, mac)
            except OSError as err:  # (the kernel then resolves it as usual)
                log.warning("could not give the host the ARP entry of %s: %s", ip, err)

    def connect(self, cid, netns_fd, rec, settings):
        """Join a running container (namespace netns_fd) to one more network."""
        with self.lock:
            ep = self.endpoints.get(cid)
            if ep is None:
                raise Conflict("container %s has no bridge network to add to" % cid[:12])
            if rec["Id"] in ep["Networks"]:
                raise Conflict("container %s is already connected to network %s" % (ep["Name"], rec["Name"]))
            before = set(ep["Veths"])
            try:
                self._join(cid, ep, rec, settings or {}, netns_fd, "eth%d" % len(ep["Networks"]), False)
                if rec["Name"] != "bridge" and (self.resolver is None or cid not in self.resolver.keys()):
                    self._serve_dns(cid, netns_fd, {})
            except BaseException:
                e = ep["Networks"].pop(rec["Id"], None)
                if e is not None:
                    self.ipam.release(rec["Id"], e["IPAddress"])
                with _nl() as c:
                    for v in set(ep["Veths"]) - before:
                        links.delete_link(c, v)
                ep["Veths"] = [v for v in ep["Veths"] if v in before]
                raise
            self._save_endpoint(cid)

    def disconnect(self, cid, rec):
        """Take a running container off one network (its veth, address and names)."""
        with self.lock:
            ep = self.endpoints.get(cid)
            e = ep["Networks"].pop(rec["Id"], None) if ep else None
            if e is None:
                return
            with _nl() as c:
                links.delete_link(c, e["HostVeth"])
            ep["Veths"] = [v for v in ep["Veths"] if v != e["HostVeth"]]
            self.ipam.release(rec["Id"], e["IPAddress"])
            self._save_endpoint(cid)
            _forget_flows(_published_addresses(ep) & {e["IPAddress"]})

    def _publish(self, ep, rec, bindings, publish_all, exposed):
        if self.fw is None:
            raise InvalidParameter("publishing ports needs iptables: daemon.json has \"iptables\": false")
        if rec["Internal"]:
            raise InvalidParameter("network %s is internal: its containers cannot publish ports"
                                   % rec["Name"])
        e = ep["Networks"][rec["Id"]]
        for m in ports.resolve(bindings, publish_all, exposed, self.reservations):
            ep["Ports"].append({"Proto": m.proto, "HostIp": m.host_ip, "HostPort": m.host_port,
                                "ContainerPort": m.container_port, "ContainerIP": e["IPAddress"],
                                "Bridge": e["Bridge"]})

    def _serve_dns(self, cid, netns_fd, hostconfig):
        if self.resolver is None:
            self.resolver = dns.EmbeddedDns(self._lookup, self._upstream)
        self.resolver.add(cid, dns.bind_socket(netns_fd))

    def _upstream(self, cid):
        """The container's --dns, else daemon.json dns, else the host's upstream servers."""
        ep = self.endpoints.get(cid) or {}
        return etcfiles.upstream_for(ep.get("Dns") or self.cfg["dns"])

    def _lookup(self, cid, name):
        with self.lock:
            mine = self.endpoints.get(cid)
            if mine is None:
                return None
            found = []
            for net_id, me in mine["Networks"].items():
                linked = [link.split(":")[0].lstrip("/").lower() for link in me.get("Links") or []
                          if link.split(":")[-1].lower() == name]  # --link target:alias
                for other in self.endpoints.values():
                    e = other["Networks"].get(net_id)
                    if not e or not e.get("DNSNames"):
                        continue
                    names = [n.lower() for n in e["DNSNames"]]
                    if name in names or any(t in names for t in linked):
                        found.append(e["IPAddress"])
            return found or None

    def _undo(self, cid, ep, delete_links=True):
        if self.resolver is not None:
            self.resolver.remove(cid)  # its socket would keep the namespace (and the veths) alive
        for p in ep.get("Ports") or []:
            self.reservations.release(p["Proto"], p["HostIp"], p["HostPort"])
        if delete_links:
            with _nl() as c:
                for v in ep.get("Veths") or []:
                    links.delete_link(c, v)
        self.ipam.release_owner(cid)
        had_ports = bool(ep.get("Ports")) or _link_rules(ep)
        self._drop_endpoint(cid)
        if had_ports:
            self._apply_firewall()
        _forget_flows(_published_addresses(ep))

    def detach(self, cid, exited=True):
        """Everything a container held. exited: its PID 1 is gone, so its namespace goes once
        nothing else holds it, and the kernel deletes the veths with it (a synchronous
        RTM_DELLINK measured 30 ms here, on the path of `run --rm`)."""
        with self.lock:
            ep = self.endpoints.get(cid)
            if ep is not None:
                self._undo(cid, ep, delete_links=not exited)
            else:
                self.ipam.release_owner(cid)

    def settings(self, cid):
        """The endpoint state of a running container, or None."""
        with self.lock:
            return self.endpoints.get(cid)

    def reconcile(self, alive):
        """At daemon start: keep what belongs to running containers (alive(cid) -> PID 1's pid or
        None): their host ports, resolver sockets and rules; release everything else, including
        veths on our bridges that no endpoint names and addresses of no endpoint."""
        with self.lock:
            if not self.endpoints and not any(self.ipam.allocations(n) for n in self.ipam.state):
                return
            self.ensure()
            for cid, ep in list(self.endpoints.items()):
                pid = alive(cid)
                if not pid:
                    self._undo(cid, ep)
                    continue
                for p in ep.get("Ports") or []:
                    try:
                        self.reservations.reserve(p["Proto"], p["HostIp"], p["HostPort"])
                    except Conflict:
                        pass  # our own DNAT still serves it; someone may have bound it meanwhile
                if any(e.get("DNSNames") for e in ep["Networks"].values()):
                    try:
                        fd = netns.open_pid(pid)
                    except OSError:
                        continue
                    try:
                        self._serve_dns(cid, fd, {})
                    except OSError as e:
                        if e.errno != errno.EADDRINUSE:
                            raise
                    finally:
                        os.close(fd)
            self.ipam.reconcile(lambda owner: owner in self.endpoints)
            keep = {v for ep in self.endpoints.values() for v in ep.get("Veths") or []}
            bridges = {records.bridge_name(r) for r in self.records.bridges()}
            with _nl() as c:
                all_links = links.links(c)
                idx = {all_links[b]["index"] for b in bridges if b in all_links}
                for name, info in all_links.items():
                    if info["kind"] == "veth" and info["master"] in idx and name not in keep:
                        links.delete_link(c, name)
            self._apply_firewall()

    def close(self):
        self.fw_stop.set()
        with self.spare_lock:
            self.closed = True
            spare, self.spare = self.spare, None
        if spare is not None:
            os.close(spare[0])
        with self.lock:
            if self.resolver is not None:
                self.resolver.close()
                self.resolver = None
            self.reservations.close()
