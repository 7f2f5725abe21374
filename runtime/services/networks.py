"""NetworkBackend implementation (see runtime/api/backend/networks.py), and the container side's
network steps, which the engine hands to ContainerService: what a create checks, what a start
wires before PID 1 runs, what an exit releases.

A bridged container's network namespace is made by the engine (runtime/network/netns.py: a
thread unshares one, no process), wired (veth, address, route, ports, resolver) and handed to
the container's PID 1, which joins it; PID 1 then is what keeps it alive. `container:` mode
hands over the other container's namespace the same way."""

import os
import threading
import time

from runtime.api.backend.networks import NetworkBackend
from runtime.container import monitor_client as client
from runtime.errors import BerthError, Conflict, InvalidParameter, NotFound
from runtime.network import etcfiles, legacylinks, links, netns, ports, records
from runtime.network.service import NetworkService


def _label_match(labels, wanted):
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


def _meaningful(settings):
    """Whether EndpointSettings ask for anything (the docker CLI sends empty ones for every run)."""
    s = settings or {}
    ipam = s.get("IPAMConfig") or {}
    return bool(s.get("Aliases") or s.get("Links") or s.get("MacAddress") or s.get("DriverOpts") or
                ipam.get("IPv4Address") or ipam.get("IPv6Address"))


class NetworkFront(NetworkBackend):
    """The /networks backend and the container side's network steps, over the containers in
    `containers` (a ContainerIndex); `config` is daemon.json's."""

    def __init__(self, data_root, config, containers, events=None):
        # type: (str, dict, object, object) -> None
        self.containers = containers
        self.networks = NetworkService(data_root, config)
        self.events = events  # runtime.events.EventLog, or None: no events
        self.link_env = {}  # container id -> its legacy links' variables, from before_start to the spawn

    def _event(self, action, rec, cid=None):
        # type: (str, dict, object) -> None
        """dockerd's network event: Actor the network, attributes name, type (its driver) and
        the container for connect/disconnect."""
        if self.events is None:
            return
        attrs = {"name": rec["Name"], "type": rec["Driver"]}
        if cid:
            attrs["container"] = cid
        self.events.emit("network", action, rec["Id"], attrs)

    def start(self):
        # type: () -> None
        """At engine start: keep running containers' endpoints, release the rest, watch exits."""
        alive = {}
        for c in self.containers.all():
            st = c.state()
            if st["Running"]:
                alive[c.id] = st["Pid"]
        self.networks.reconcile(alive.get)
        for cid in alive:
            if self.networks.settings(cid) is not None:
                self._watch_exit(self.containers.get(cid))

    def close(self):
        # type: () -> None
        self.networks.close()

    # ---------------------------------------------------------------- /networks
    def network_list(self, filters=None):
        filters = filters or {}
        out = []
        for n in self.networks.list():
            if "name" in filters and not any(f in n["Name"] for f in filters["name"]):
                continue
            if "id" in filters and not any(n["Id"].startswith(f) for f in filters["id"]):
                continue
            if "driver" in filters and n["Driver"] not in filters["driver"]:
                continue
            if "label" in filters and not _label_match(n["Labels"], filters["label"]):
                continue
            if "type" in filters:
                kind = "builtin" if n["Name"] in records.PREDEFINED else "custom"
                if kind not in filters["type"]:
                    continue
            out.append(n)
        return out

    def network_inspect(self, name):
        return self.networks.inspect(name)

    def network_create(self, body):
        name = body.get("Name") or ""
        if body.get("EnableIPv6"):
            raise InvalidParameter("IPv6 networks are not supported: create it without --ipv6")
        if body.get("Ingress") or body.get("ConfigOnly") or (body.get("ConfigFrom") or {}).get("Network"):
            raise InvalidParameter("swarm networks (ingress, config-only, config-from) are not supported")
        if (body.get("Scope") or "local") != "local":
            raise InvalidParameter("network scope %r is not supported: only local" % body.get("Scope"))
        ipam = body.get("IPAM") or {}
        if (ipam.get("Driver") or "default") != "default":
            raise InvalidParameter("IPAM driver %r is not supported: only default" % ipam["Driver"])
        configs = ipam.get("Config") or []
        if len(configs) > 1:
            raise InvalidParameter("one IPAM config (subnet) per network is supported")
        cfg = configs[0] if configs else {}
        rec = self.networks.create(name, body.get("Driver") or "bridge", cfg.get("Subnet"),
                                   cfg.get("Gateway"), cfg.get("IPRange"), bool(body.get("Internal")),
                                   bool(body.get("Attachable")), body.get("Labels"), body.get("Options"),
                                   aux=cfg.get("AuxiliaryAddresses"), ipam_options=ipam.get("Options"))
        self._event("create", rec)
        return {"Id": rec["Id"], "Warning": ""}

    def network_remove(self, name):
        rec = self.networks.get(name)
        self.networks.remove(rec["Id"])
        self._event("destroy", rec)

    def network_prune(self, filters=None):
        in_use = set()
        for c in self.containers.all():
            for rec in self.networks.records.all():
                if self._wants(c, rec):
                    in_use.add(rec["Id"])
        before = {rec["Name"]: rec for rec in self.networks.records.all()}
        gone = self.networks.prune(in_use)
        for name in gone:
            self._event("destroy", before[name])
        return gone

    def network_connect(self, name, container, endpoint_config=None):
        rec = self.networks.get(name)
        if rec["Driver"] != "bridge":
            raise InvalidParameter("cannot connect a container to the %s network" % rec["Name"])
        c = self.containers.get(container)
        hc = c.cfg["HostConfig"]
        if c.cfg["NetworkMode"] in ("host", "none", "container"):
            raise Conflict("container %s has network mode %s: it cannot join other networks"
                           % (c.name, hc.get("NetworkMode")))
        with c.lock:
            nc = c.cfg.setdefault("NetworkingConfig", {})
            eps = nc.setdefault("EndpointsConfig", {})
            left = nc.setdefault("Left", [])
            if rec["Name"] in eps or (self._mode_net(c) == rec["Name"] and rec["Name"] not in left):
                raise Conflict("container %s is already connected to network %s" % (c.name, rec["Name"]))
            st = c.state()
            if st["Running"]:
                fd = netns.open_pid(st["Pid"])
                try:
                    self.networks.connect(c.id, fd, rec, endpoint_config or {})
                finally:
                    os.close(fd)
            if rec["Name"] in left:
                left.remove(rec["Name"])
            else:
                eps[rec["Name"]] = endpoint_config or {}
            c.save()
        if st["Running"]:  # (a stopped container joins at its next start: the event comes then)
            self._event("connect", rec, c.id)

    def network_disconnect(self, name, container, force=False):
        rec = self.networks.get(name)
        c = self.containers.get(container)
        with c.lock:
            nc = c.cfg.setdefault("NetworkingConfig", {})
            eps = nc.setdefault("EndpointsConfig", {})
            left = nc.setdefault("Left", [])
            by_mode = self._mode_net(c) == rec["Name"] and rec["Name"] not in left
            if rec["Name"] not in eps and not by_mode:
                raise NotFound("container %s is not connected to network %s" % (c.name, rec["Name"]))
            self.networks.disconnect(c.id, rec)
            if by_mode:  # NetworkMode stays as created; the next start leaves this network out
                left.append(rec["Name"])
            else:
                del eps[rec["Name"]]
            c.save()
        self._event("disconnect", rec, c.id)  # (dockerd says it for a stopped container too)

    # ---------------------------------------------------------------- the container side
    def joined(self, c):
        # type: (object) -> list
        """The records of the networks container c is in while it runs: none or host by its
        mode, its bridge networks (mode, then endpoints, less those disconnected), or nothing
        in container: mode (it shares another's)."""
        kind = c.cfg["NetworkMode"]
        if kind == "container":
            return []
        try:
            if kind in ("none", "host"):
                return [self.networks.get(kind)]
            nc = c.cfg.get("NetworkingConfig") or {}
            joins = self.networks.resolve_networks(c.cfg["HostConfig"].get("NetworkMode") or "default",
                                                   nc.get("EndpointsConfig"))
        except NotFound:  # (removed since: it has no endpoint to report)
            return []
        return [rec for rec, _ in joins if rec["Name"] not in (nc.get("Left") or [])]

    def container_events(self, c, action):
        # type: (object, str) -> None
        """`connect` (at each start) or `disconnect` (after each exit) for every network c is in."""
        for rec in self.joined(c):
            self._event(action, rec, c.id)

    def _mode_net(self, c):
        mode = c.cfg["HostConfig"].get("NetworkMode") or "default"
        return "bridge" if mode == "default" else mode

    def _wants(self, c, rec):
        """Whether container c names network rec (by mode or endpoints config)."""
        eps = (c.cfg.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        refs = [self._mode_net(c)] + list(eps)
        return rec["Name"] in refs or rec["Id"] in refs

    def check_create(self, hc, config, networking):
        # type: (dict, dict, dict) -> str
        """Check a create's network settings; the kind of mode: none, host, bridge, container."""
        from runtime.container import spec
        mode = spec.network_mode(hc)
        self._mac_to_endpoint(config, mode, networking)
        wanted_links = [legacylinks.parse_link(x) for x in hc.get("Links") or []]
        eps = {k: v for k, v in ((networking or {}).get("EndpointsConfig") or {}).items()
               if _meaningful(v) or k not in ("default", "bridge", mode)}
        for ref, settings in eps.items():
            if (settings or {}).get("MacAddress"):
                settings["MacAddress"] = links.parse_mac(settings["MacAddress"], "MacAddress of network %s"
                                                         % ref)
        if mode == "default":
            mode = self.networks.default_mode()
            hc["NetworkMode"] = "default" if mode == "bridge" else "none"
            if "default" in eps:
                eps["bridge"] = eps.pop("default")
        if wanted_links and (mode in ("none", "host") or mode.startswith("container:")):
            raise InvalidParameter("conflicting options: --link needs a bridge network, and network mode %s "
                                   "has none" % mode)
        for key in ("PortBindings",):
            for port in (hc.get(key) or {}):
                ports.split_port(port)
        etcfiles.parse_extra_hosts(hc.get("ExtraHosts"), self.host_gateway(hc))
        if mode in ("none", "host"):
            if hc.get("PortBindings") or hc.get("PublishAllPorts"):
                raise InvalidParameter("published ports need a bridge network, and network mode %s has "
                                       "none: drop -p/-P or use --network bridge" % mode)
            if eps:
                raise InvalidParameter("network mode %s cannot take endpoint settings (--ip, "
                                       "--network-alias, --mac-address)" % mode)
            return mode
        if mode.startswith("container:"):
            self.containers.get(mode[len("container:"):])
            if hc.get("PortBindings") or hc.get("PublishAllPorts") or eps or hc.get("Dns") or \
                    hc.get("ExtraHosts") or config.get("Hostname"):
                raise InvalidParameter("conflicting options: a container: network mode shares the other "
                                       "container's network (no -p, --dns, --add-host, --hostname, --ip)")
            return "container"
        for ref, settings in list(eps.items()) + [(mode, eps.get(mode) or {})]:
            rec = self.networks.get("bridge" if ref == "default" else ref)
            if rec["Driver"] != "bridge":
                raise InvalidParameter("network %s cannot be combined with others" % rec["Name"])
            want = ((settings or {}).get("IPAMConfig") or {}).get("IPv4Address")
            if want and rec["Name"] == "bridge":
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            if want:
                import ipaddress
                try:
                    subnet = ipaddress.ip_network(rec["IPAM"]["Config"][0]["Subnet"])
                    ok = ipaddress.ip_address(want) in subnet
                except ValueError:
                    raise InvalidParameter("invalid IP address %r (--ip)" % want) from None
                if not ok:
                    raise InvalidParameter("address %s (--ip) is not in network %s's subnet %s"
                                           % (want, rec["Name"], rec["IPAM"]["Config"][0]["Subnet"]))
        if wanted_links:
            self._check_links(mode, wanted_links, networking)
        return "bridge"

    def _mac_to_endpoint(self, config, mode, networking):
        """Config.MacAddress (deprecated since API 1.44) moves to the endpoint of the network
        NetworkMode names, as dockerd moves it; a different endpoint MAC is a 400."""
        mac = config.get("MacAddress")
        if not mac:
            return
        mac = links.parse_mac(mac, "Config.MacAddress")
        if mode in ("none", "host") or mode.startswith("container:"):
            raise InvalidParameter("conflicting options: a MAC address (--mac-address) needs a bridge "
                                   "network, and network mode %s has no interface of its own" % mode)
        eps = dict(networking.get("EndpointsConfig") or {})
        if eps and mode not in eps:
            raise InvalidParameter("Config.MacAddress needs HostConfig.NetworkMode (%s) to name a network of "
                                   "NetworkingConfig.EndpointsConfig: give the MAC address there" % mode)
        ep = dict(eps.get(mode) or {})
        if ep.get("MacAddress") and links.parse_mac(ep["MacAddress"], "MacAddress") != mac:
            raise InvalidParameter("Config.MacAddress %s differs from network %s's endpoint MacAddress %s: "
                                   "give one of them" % (mac, mode, ep["MacAddress"]))
        ep["MacAddress"] = mac
        eps[mode] = ep
        networking["EndpointsConfig"] = eps

    def _check_links(self, mode, wanted, networking):
        """HostConfig.Links: on the default bridge, the linked containers (each followed through
        a container: network mode to the one that owns the namespace) as
        NetworkingConfig.LegacyLinks [[id, alias]]; on a user network the aliases are names the
        embedded resolver answers, so they join that network's endpoint Links."""
        rec = self.networks.get("bridge" if mode == "default" else mode)
        if rec["Name"] != "bridge":
            eps = dict(networking.get("EndpointsConfig") or {})
            ep = dict(eps.get(mode) or {})
            ep["Links"] = ep.get("Links") or ["%s:%s" % pair for pair in wanted]
            eps[mode] = ep
            networking["EndpointsConfig"] = eps
            return
        out = []
        for name, alias in wanted:
            try:
                target = self.containers.get(name)
                while target.cfg["NetworkMode"] == "container":
                    target = self.containers.get(target.cfg["HostConfig"]["NetworkMode"][len("container:"):])
            except NotFound:
                raise InvalidParameter("could not get container for %s (--link %s:%s): no such container"
                                       % (name, name, alias)) from None
            if target.cfg["NetworkMode"] == "host":
                raise InvalidParameter("conflicting options: container %s uses the host's network, which "
                                       "cannot be linked to (--link %s:%s)" % (target.name, name, alias))
            out.append([target.id, alias])
        networking["LegacyLinks"] = out

    def host_gateway(self, hc):
        """The address host-gateway stands for, looked up only when an --add-host asks for it."""
        if not any(str(h).endswith(("host-gateway")) for h in hc.get("ExtraHosts") or []):
            return None
        cfg = self.networks.cfg
        if cfg["host-gateway-ip"]:
            return cfg["host-gateway-ip"]
        if cfg["bridge"] == "none":
            return None
        try:
            return self.networks.get("bridge")["IPAM"]["Config"][0]["Gateway"]
        except (BerthError, OSError, IndexError, KeyError):
            return None

    def before_start(self, c):
        # type: (object) -> int
        """The namespace fd PID 1 is to join (the caller closes it), wired; -1 for none/host."""
        kind = c.cfg["NetworkMode"]
        hc, conf = c.cfg["HostConfig"], c.cfg["Config"]
        if kind in ("none", "host"):
            return -1
        if kind == "container":
            other = self.containers.get(hc["NetworkMode"][len("container:"):])
            st = other.state()
            if not st["Running"]:
                raise Conflict("cannot join the network of container %s: it is not running" % other.name)
            return netns.open_pid(st["Pid"])
        nc = c.cfg.get("NetworkingConfig") or {}
        joins = self.networks.resolve_networks(hc.get("NetworkMode") or "default", nc.get("EndpointsConfig"))
        joins = [(rec, st) for rec, st in joins if rec["Name"] not in (nc.get("Left") or [])]
        targets = self._link_targets(c, joins)
        fd, veth = self.networks.take_netns()
        try:
            ep = self.networks.attach(c.id, "/" + c.name, fd, joins, hc, conf.get("ExposedPorts") or {}, veth,
                                      targets)
            self._write_etc(c, ep, joins)
            if ep.get("LegacyLinks"):
                self.link_env[c.id] = self._links_env(c, ep)
        except BaseException:
            os.close(fd)
            self.link_env.pop(c.id, None)
            self.networks.detach(c.id, exited=False)
            raise
        return fd

    def _link_targets(self, c, joins):
        """[(id, name, alias, exposed ports)] of the running containers c links to on the
        default bridge; a 409 naming one that is gone or not running."""
        wanted = (c.cfg.get("NetworkingConfig") or {}).get("LegacyLinks") or []
        if not wanted or not any(rec["Name"] == "bridge" for rec, _ in joins):
            return []
        out = []
        for cid, alias in wanted:
            try:
                t = self.containers.get(cid)
                while t.cfg["NetworkMode"] == "container":
                    t = self.containers.get(t.cfg["HostConfig"]["NetworkMode"][len("container:"):])
            except NotFound:
                raise Conflict("cannot start container %s: the container it links to as %s was removed; "
                               "recreate this one without that --link" % (c.name, alias)) from None
            if not t.state()["Running"]:
                raise Conflict("cannot link to container %s as %s: it is not running; start it first"
                               % (t.name, alias))
            out.append((t.id, t.name, alias, legacylinks.ports(t.cfg["Config"].get("ExposedPorts"))))
        return out

    def _links_env(self, c, ep):
        env = []
        for k in ep["LegacyLinks"]:
            t = self.containers.get(k["Id"])
            env += legacylinks.env_vars("/%s/%s" % (c.name, k["Alias"]), k["Alias"], k["IPAddress"],
                                        t.cfg["Config"].get("Env"), t.cfg["Config"].get("ExposedPorts"))
        return env

    def process_env(self, c, env):
        # type: (object, list) -> list
        """PID 1's environment: env with the variables of c's legacy links (its own win)."""
        extra = self.link_env.pop(c.id, None)
        return legacylinks.merge_env(env, extra) if extra else env

    def _write_etc(self, c, ep, joins):
        hc, conf = c.cfg["HostConfig"], c.cfg["Config"]
        addrs = [e["IPAddress"] for e in ep["Networks"].values()]
        extra = etcfiles.parse_extra_hosts(hc.get("ExtraHosts"), self.host_gateway(hc))
        for k in ep.get("LegacyLinks") or []:
            t = self.containers.get(k["Id"])
            extra.append((legacylinks.host_names(k["Alias"], t.cfg["Config"].get("Hostname"), t.name),
                          k["IPAddress"]))
        hosts = etcfiles.hosts(conf["Hostname"], conf.get("Domainname") or "", addrs[:1], extra)
        embedded = any(rec["Name"] != "bridge" for rec, _ in joins)
        try:
            with open("/etc/resolv.conf") as f:
                host_text = f.read()
        except OSError:
            host_text = ""
        cfg = self.networks.cfg
        resolv = etcfiles.resolv_conf(host_text, embedded, hc.get("Dns") or cfg["dns"],
                                      hc.get("DnsSearch") or cfg["dns-search"],
                                      hc.get("DnsOptions") or cfg["dns-opts"], etcfiles.upstream_for([]))
        for name, text in (("hosts", hosts), ("resolv.conf", resolv)):
            with open(c.file(name), "w") as f:
                f.write(text)

    def after_start(self, c, ok):
        # type: (object, bool) -> None
        """A start that failed gives back what before_start took; one that worked is
        watched, so the exit releases it."""
        if c.cfg["NetworkMode"] != "bridge":
            return
        self.networks.spare_later()  # for the next start, now that this one is wired
        if not ok:
            self.networks.detach(c.id, exited=False)
            return
        self._watch_exit(c)

    def _watch_exit(self, c):
        started = c.started()

        def watch():
            while True:
                try:
                    client.wait_exit(c)
                except OSError:  # the monitor's socket is not there (yet): ask the process
                    pass
                if c.started() != started:
                    return  # started again (or removed): that start has its own watcher
                if not c.state()["Running"]:
                    self.networks.detach(c.id)
                    return
                time.sleep(0.05)
        threading.Thread(target=watch, name="berth-netwatch", daemon=True).start()

    def detach(self, cid):
        # type: (str) -> None
        """What a removed container held."""
        self.networks.detach(cid)

    def view(self, c):
        # type: (object) -> tuple
        """(endpoint state or None, NetworkSettings.Ports) for the container views."""
        ep = self.networks.settings(c.id)
        mappings = [ports.Mapping(p["Proto"], p["HostIp"], p["HostPort"], p["ContainerPort"])
                    for p in (ep or {}).get("Ports") or []]
        return ep, ports.port_map(mappings, c.cfg["Config"].get("ExposedPorts") or {})

    def write_etc(self, path, hostname, mode, hc=None, domainname=""):
        # type: (str, str, str, dict, str) -> None
        """hostname, hosts and resolv.conf in the container dir (bound over /etc/... at start; a
        bridged container's hosts and resolv.conf are written again at each start, with its
        address)."""
        hc = hc or {}
        with open(os.path.join(path, "hostname"), "w") as f:
            f.write(hostname + "\n")
        try:
            with open("/etc/resolv.conf") as f:
                host_resolv = f.read()
        except OSError:
            host_resolv = ""
        if mode == "host":
            try:
                with open("/etc/hosts") as f:
                    hosts = f.read()
            except OSError:
                hosts = etcfiles.hosts(hostname)
            resolv = host_resolv
        else:
            extra = []
            if mode == "none":
                extra = etcfiles.parse_extra_hosts(hc.get("ExtraHosts"), self.host_gateway(hc))
            hosts = etcfiles.hosts(hostname, domainname, [], extra)
            resolv = etcfiles.resolv_conf(host_resolv, False, hc.get("Dns"), hc.get("DnsSearch"),
                                          hc.get("DnsOptions"), etcfiles.upstream_for([]))
        with open(os.path.join(path, "hosts"), "w") as f:
            f.write(hosts)
        with open(os.path.join(path, "resolv.conf"), "w") as f:
            f.write(resolv)

