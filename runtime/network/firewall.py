"""iptables rules for bridge networks, kept in chains of our own.

filter: FORWARD jumps to BERTH-USER (the admin's, never flushed by us) then BERTH-FORWARD,
which sends traffic through BERTH-ISOLATION-STAGE-1/2 (no bridge reaches another), accepts
replies and outbound traffic, and sends inbound traffic to BERTH (one ACCEPT per published
port). nat: PREROUTING and OUTPUT jump to BERTH (one DNAT per published port) for local
destinations, POSTROUTING to BERTH-POSTROUTING (MASQUERADE leaving the host, of 127.0.0.1
callers, and of a container reaching itself through the host).

Every change rewrites all of our chains from the desired state in one `iptables-restore
--noflush` (a chain declared in its input is flushed first, rules of anyone else are left
alone), so a change is all-or-nothing and a restart reconciles by rewriting. Works with both
back ends (iptables 1.4.21 legacy as on CentOS 7, 1.8 nft): only long-standing matches.

Loopback callers (-p 127.0.0.1:H:C, or curl localhost:H on the host) are DNATed in OUTPUT and
routed out of the bridge, which the kernel allows with `route_localnet` on the bridge; with a
bridge port in hairpin mode a container also reaches its own published port through the
host's address. That is all kernel state: no proxy process per port to start, to copy every
byte, or to lose when the daemon is killed (published ports keep working while it is down)."""

import subprocess

OURS_FILTER = ("BERTH-FORWARD", "BERTH", "BERTH-ISOLATION-STAGE-1", "BERTH-ISOLATION-STAGE-2")
OURS_NAT = ("BERTH", "BERTH-POSTROUTING")
JUMPS = (
    ("filter", "FORWARD", "-j BERTH-FORWARD"),
    ("filter", "FORWARD", "-j BERTH-USER"),  # inserted last, so first
    ("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j BERTH"),
    ("nat", "OUTPUT", "-m addrtype --dst-type LOCAL -j BERTH"),
    ("nat", "POSTROUTING", "-j BERTH-POSTROUTING"),
)
WATCHED = (JUMPS[0], JUMPS[4])  # one jump per table: what intact() polls


class FirewallError(Exception):
    pass


class Net(object):
    """What the rules need of one bridge network."""

    def __init__(self, bridge, subnet, internal=False, icc=True, masquerade=True):
        self.bridge, self.subnet = bridge, str(subnet)
        self.internal, self.icc, self.masquerade = internal, icc, masquerade


class Published(object):
    """One published port: bridge, container address, proto, host ip ('' = any), ports."""

    def __init__(self, bridge, container_ip, proto, host_ip, host_port, container_port):
        self.bridge, self.container_ip, self.proto = bridge, container_ip, proto
        self.host_ip, self.host_port, self.container_port = host_ip, host_port, container_port


class LinkRule(object):
    """A legacy link on a bridge with icc off: parent_ip may reach child_ip's exposed port."""

    def __init__(self, bridge, parent_ip, child_ip, proto, port):
        self.bridge, self.parent_ip, self.child_ip = bridge, parent_ip, child_ip
        self.proto, self.port = proto, port


def render(nets, published, ip_masq=True, missing_jumps=(), new_user_chain=False, forward_drop=False,
           links=()):
    """The iptables-restore input that makes our chains exactly this state."""
    f = ["*filter"]
    if forward_drop:
        f.append(":FORWARD DROP [0:0]")
    f += [":%s - [0:0]" % c for c in OURS_FILTER]
    if new_user_chain:
        f += [":BERTH-USER - [0:0]", "-A BERTH-USER -j RETURN"]
    f.append("-A BERTH-FORWARD -j BERTH-ISOLATION-STAGE-1")
    for n in nets:
        b = n.bridge
        f.append("-A BERTH-FORWARD -o %s -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" % b)
        f.append("-A BERTH-FORWARD -o %s -j BERTH" % b)
        if not n.internal:
            f.append("-A BERTH-FORWARD -i %s ! -o %s -j ACCEPT" % (b, b))
        f.append("-A BERTH-FORWARD -i %s -o %s -j %s" % (b, b, "ACCEPT" if n.icc else "DROP"))
        f.append("-A BERTH-ISOLATION-STAGE-1 -i %s ! -o %s -j BERTH-ISOLATION-STAGE-2" % (b, b))
        if n.internal:
            f.append("-A BERTH-ISOLATION-STAGE-1 ! -s %s -o %s -j DROP" % (n.subnet, b))
            f.append("-A BERTH-ISOLATION-STAGE-1 ! -d %s -i %s -j DROP" % (n.subnet, b))
        f.append("-A BERTH-ISOLATION-STAGE-2 -o %s -j DROP" % b)
    f.append("-A BERTH-ISOLATION-STAGE-1 -j RETURN")
    f.append("-A BERTH-ISOLATION-STAGE-2 -j RETURN")
    for p in published:
        f.append("-A BERTH -d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT" % (
            p.container_ip, p.bridge, p.bridge, p.proto, p.proto, p.container_port))
    for k in links:  # before BERTH-FORWARD's icc DROP (BERTH is jumped to first), as dockerd's DOCKER
        f.append("-A BERTH -s %s/32 -d %s/32 -i %s -o %s -p %s -m %s --dport %d -j ACCEPT" % (
            k.parent_ip, k.child_ip, k.bridge, k.bridge, k.proto, k.proto, k.port))
        f.append("-A BERTH -s %s/32 -d %s/32 -i %s -o %s -p %s -m %s --sport %d -j ACCEPT" % (
            k.child_ip, k.parent_ip, k.bridge, k.bridge, k.proto, k.proto, k.port))
    n_ = ["*nat"] + [":%s - [0:0]" % c for c in OURS_NAT]
    for n in nets:
        if ip_masq and n.masquerade and not n.internal:
            n_.append("-A BERTH-POSTROUTING -s %s ! -o %s -j MASQUERADE" % (n.subnet, n.bridge))
        n_.append("-A BERTH-POSTROUTING -o %s -m addrtype --src-type LOCAL -j MASQUERADE" % n.bridge)
    for p in published:
        dst = "-d %s/32 " % p.host_ip if p.host_ip else ""
        n_.append("-A BERTH %s-p %s -m %s --dport %d -j DNAT --to-destination %s:%d" % (
            dst, p.proto, p.proto, p.host_port, p.container_ip, p.container_port))
        n_.append("-A BERTH-POSTROUTING -s %s/32 -d %s/32 -p %s -m %s --dport %d -j MASQUERADE" % (
            p.container_ip, p.container_ip, p.proto, p.proto, p.container_port))
    for table, chain, rule in missing_jumps:
        (f if table == "filter" else n_).append("-I %s 1 %s" % (chain, rule))
    return "\n".join(f + ["COMMIT"] + n_ + ["COMMIT", ""])


def render_removal(present_jumps, user_chain_empty):
    """The restore input that removes our chains and jumps (BERTH-USER only when it holds
    nothing but our RETURN)."""
    f = ["*filter"] + [":%s - [0:0]" % c for c in OURS_FILTER]
    n_ = ["*nat"] + [":%s - [0:0]" % c for c in OURS_NAT]
    for table, chain, rule in present_jumps:
        (f if table == "filter" else n_).append("-D %s %s" % (chain, rule))
    f += ["-X %s" % c for c in OURS_FILTER]
    n_ += ["-X %s" % c for c in OURS_NAT]
    if user_chain_empty:
        f += [":BERTH-USER - [0:0]", "-X BERTH-USER"]
    return "\n".join(f + ["COMMIT"] + n_ + ["COMMIT", ""])


class Firewall(object):
    """Applies the desired state with one iptables-restore per change. prefix picks the back
    end's tools: 'iptables' (the system's choice), 'iptables-legacy' or 'iptables-nft'."""

    def __init__(self, prefix="iptables", ip_masq=True):
        self.prefix = prefix
        self.ip_masq = ip_masq
        self.forward_drop = False
        self._jumps_checked = False

    def _run(self, tool, data=None):
        argv = [self.prefix + tool] + (["--noflush"] if tool == "-restore" else [])
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise FirewallError("cannot run %s: %s (install iptables, or set \"iptables\": false "
                                "in daemon.json)" % (argv[0], e.strerror)) from None
        out, err = p.communicate(data.encode() if data is not None else None)
        if p.returncode:
            raise FirewallError("%s failed: %s" % (" ".join(argv), err.decode("utf-8", "replace").strip()))
        return out.decode("utf-8", "replace")

    def save(self):
        """iptables-save output (all tables)."""
        return self._run("-save")

    def _present(self, saved):
        lines = set(saved.splitlines())
        present = [j for j in JUMPS if "-A %s %s" % (j[1], j[2]) in lines]
        missing = [j for j in JUMPS if j not in present]
        user = any(line.startswith(":BERTH-USER ") for line in lines)
        user_rules = [line for line in lines if line.startswith("-A BERTH-USER ")]
        return present, missing, user, user_rules

    def apply(self, nets, published, links=()):
        """Make our chains exactly this state (jumps added where missing, once per daemon run
        or after check_jumps())."""
        missing, new_user = [], False
        if not self._jumps_checked:
            _, missing, user, _ = self._present(self.save())
            new_user = not user
        self._run("-restore", render(nets, published, self.ip_masq, missing, new_user, self.forward_drop,
                                            links))
        self._jumps_checked = True
        self.forward_drop = False

    def check_jumps(self):
        """Make the next apply() look for (and restore) the jumps, e.g. after a firewall reload."""
        self._jumps_checked = False

    def intact(self):
        """Whether our FORWARD jump (filter) and POSTROUTING jump (nat) are still there: a
        firewalld reload or an `iptables -F` takes every rule of a table away, ours included,
        and a flush may hit one table only (`iptables -t nat -F`). One `iptables -C` per table."""
        for table, chain, rule in WATCHED:
            try:
                if subprocess.call([self.prefix, "-t", table, "-C", chain] + rule.split(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
                    return False
            except OSError:
                return True  # nothing to check with: apply() says why when it is needed
        return True

    def remove(self):
        """Remove every chain and jump of ours (and BERTH-USER if nobody added a rule to it)."""
        saved = self.save()
        present, _, user, user_rules = self._present(saved)
        if not any(line.startswith(":BERTH") for line in saved.splitlines()):
            return
        self._run("-restore", render_removal(present, user and user_rules == ["-A BERTH-USER -j RETURN"]))
        self._jumps_checked = False


ZONE = "berth"


def _firewall_cmd(*args):
    """(exit status, stdout) of `firewall-cmd ARGS`; 127 where it is not installed."""
    try:
        p = subprocess.Popen(("firewall-cmd",) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError:
        return 127, ""
    out, _ = p.communicate()
    return p.returncode, out.decode("utf-8", "replace")


def firewalld_running():
    """Whether firewalld runs (`firewall-cmd --state`); False where it is not installed."""
    return _firewall_cmd("--state")[0] == 0


def firewalld_zone(names, gone=()):
    """Put our bridges (names) in firewalld's zone `berth`, a zone of our own as dockerd has
    `docker`: target ACCEPT, so that what containers send to the host itself is not rejected
    by the default zone. The zone is made in the permanent configuration the first time (a
    reload then loads it, and flushes every table: the caller applies our rules afterwards),
    and each bridge is bound in both the permanent and the runtime configuration, so a
    `firewall-cmd --reload` keeps the bindings. gone: bridges removed, unbound."""
    rc, zones = _firewall_cmd("--permanent", "--get-zones")
    if rc:
        return
    if ZONE not in zones.split():
        _firewall_cmd("--permanent", "--new-zone=" + ZONE)
        _firewall_cmd("--permanent", "--zone=" + ZONE, "--set-target=ACCEPT")
        _firewall_cmd("--reload")
    bound = set(_firewall_cmd("--permanent", "--zone=" + ZONE, "--list-interfaces")[1].split())
    for name in names:
        if name not in bound:
            _firewall_cmd("--permanent", "--zone=" + ZONE, "--add-interface=" + name)
        _firewall_cmd("--zone=" + ZONE, "--change-interface=" + name)
    for name in gone:
        if name in bound:
            _firewall_cmd("--permanent", "--zone=" + ZONE, "--remove-interface=" + name)
        _firewall_cmd("--zone=" + ZONE, "--remove-interface=" + name)


def firewalld_unbind(names):
    """Unbind these bridges from zone `berth` (both configurations), and delete the zone once
    no interface is left in it (an uninstall)."""
    rc, zones = _firewall_cmd("--permanent", "--get-zones")
    if rc or ZONE not in zones.split():
        return
    firewalld_zone([], names)
    if not _firewall_cmd("--permanent", "--zone=" + ZONE, "--list-interfaces")[1].split():
        _firewall_cmd("--permanent", "--delete-zone=" + ZONE)
        _firewall_cmd("--reload")


def backend(prefix="iptables"):
    """'nf_tables' or 'legacy', as the tool's --version says."""
    out = subprocess.check_output([prefix, "--version"]).decode()
    return "nf_tables" if "nf_tables" in out else "legacy"
