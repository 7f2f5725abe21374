"""berthd on the legacy iptables back end (as CentOS 7), and with daemon.json `iptables: false`,
`ip-masq: false`, `icc: false`, `bip`/`fixed-cidr`, each in a fresh test namespace."""

import os
import signal
import subprocess

import pytest

from tests.api.conftest import Berthd
from tests.imagefactory import wait_for
from tests.network.conftest import BLOCKED, NetNs, Outside, http_get, wget
from tests.network.test_berthd_bridge import HTTPD
from tests.network.topology import HOST_OUT, OUTSIDE


@pytest.fixture
def make(tmp_path, busybox_tar):
    """make(config, legacy=False) -> a started berthd in a fresh namespace, busybox loaded."""
    made = []

    def _make(config, legacy=False):
        tag = "bb%d%s" % (os.getpid(), os.urandom(2).hex())
        ns = NetNs(tag)
        out = Outside(tag + "o", ns)
        d = Berthd(str(tmp_path / tag), config=config, netns=tag)
        made.append((d, out, ns))
        if legacy:  # the iptables tools berthd finds first are the legacy ones
            bindir = tmp_path / (tag + "bin")
            bindir.mkdir()
            for tool in ("iptables", "iptables-save", "iptables-restore"):
                os.symlink("/usr/sbin/" + tool.replace("iptables", "iptables-legacy"), str(bindir / tool))
            os.environ["PATH"], saved = str(bindir) + ":" + os.environ["PATH"], os.environ["PATH"]
            try:
                d.start()
            finally:
                os.environ["PATH"] = saved
        else:
            d.start()
        d.ns, d.outside = ns, out
        with open(busybox_tar, "rb") as f:
            assert d.api("POST", "/images/load", body=f.read(),
                         headers={"Content-Type": "application/x-tar"})[0] == 200
        return d

    yield _make
    for d, out, ns in made:
        d.cleanup()
        out.close()
        ns.close()


def save(d, tool):
    return d.ns.run([tool]).stdout.decode()


def test_legacy_iptables(make):
    d = make({"dns": [OUTSIDE]}, legacy=True)
    r = d.berth("run", "-d", "--name", "web", "-p", "18080:80", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: http_get(d.outside.ns, HOST_OUT, 18080), 5).startswith("hello from ")
    assert http_get(d.ns, "127.0.0.1", 18080).startswith("hello from ")
    legacy = save(d, "iptables-legacy-save")
    assert "-A BERTH -p tcp -m tcp --dport 18080 -j DNAT --to-destination 172.17.0.2:80" in legacy
    assert "BERTH" not in save(d, "iptables-nft-save")
    assert d.berth("network", "create", "appnet").returncode == 0
    r = d.berth("run", "--rm", "--network", "appnet", "busybox", *wget("http://%s:9000/" % OUTSIDE, 5))
    assert r.returncode == 0 and r.stdout.decode() == "outside saw %s\n" % HOST_OUT, r.stderr
    assert d.berth("rm", "-f", "web").returncode == 0
    assert d.berth("network", "rm", "appnet").returncode == 0
    assert wait_for(lambda: "18080" not in save(d, "iptables-legacy-save"), 5)


def test_no_iptables_no_masquerade_and_own_bip(make):
    d = make({"iptables": False, "bip": "10.66.0.1/24", "fixed-cidr": "10.66.0.128/25"})
    r = d.berth("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")
    assert r.returncode == 0 and " 10.66.0.128/24 " in r.stdout.decode(), r.stderr
    assert "BERTH" not in save(d, "iptables-save")
    r = d.berth("run", "--rm", "-p", "18080:80", "busybox", "true")
    assert r.returncode == 125 and "publishing ports needs iptables" in r.stderr.decode()
    # no MASQUERADE: the outside host sees the container's own address (and has no route back)
    r = d.berth("run", "--rm", "busybox", *wget("http://%s:9000/" % OUTSIDE, 2))
    assert r.returncode in BLOCKED, r


def test_icc_false_isolates_containers_on_the_default_bridge(make):
    d = make({"icc": False, "ip-masq": False})
    r = d.berth("run", "-d", "--name", "web", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: http_get(d.ns, "172.17.0.2", 80), 5)
    r = d.berth("run", "--rm", "busybox", *wget("http://172.17.0.2/", 2))
    assert r.returncode in BLOCKED, r
    assert "-A BERTH-FORWARD -i berth0 -o berth0 -j DROP" in save(d, "iptables-save")
    assert "MASQUERADE" not in "\n".join(line for line in save(d, "iptables-save").splitlines()
                                         if "! -o berth0" in line)
    # a legacy link opens the linked container's exposed ports to the linking one, and only those
    r = d.berth("run", "-d", "--name", "db", "--expose", "80", "busybox", "sh", "-c",
                "mkdir /www && echo db > /www/index.html && httpd -p 81 -h /www && "
                "exec httpd -f -p 80 -h /www")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: http_get(d.ns, "172.17.0.3", 81), 5)
    r = d.berth("run", "-d", "--name", "app", "--link", "db", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    rule = "-A BERTH -s 172.17.0.4/32 -d 172.17.0.3/32 -i berth0 -o berth0 -p tcp -m tcp --dport 80 -j ACCEPT"
    assert rule in save(d, "iptables-save")
    r = d.berth("exec", "app", *wget("http://172.17.0.3/", 2))
    assert r.returncode == 0 and r.stdout.decode() == "db\n", r
    r = d.berth("exec", "app", *wget("http://172.17.0.3:81/", 2))
    assert r.returncode in BLOCKED, r
    assert d.berth("rm", "-f", "app").returncode == 0
    assert wait_for(lambda: rule not in save(d, "iptables-save"), 5)


def test_remove_network_takes_away_bridges_veths_and_rules(make):
    """`berthd --remove-network` (run by `provision uninstall`): refused while berthd serves;
    once it is stopped, the bridges, the veths still plugged into them and our chains go, and
    nothing else of the namespace does (the outside link, other chains)."""
    d = make({"dns": [OUTSIDE]})
    assert d.berth("network", "create", "appnet").returncode == 0
    r = d.berth("run", "-d", "--name", "web", "--network", "appnet", "-p", "18080:80", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    assert d.berth("run", "--rm", "busybox", "true").returncode == 0
    d.ns.run(["iptables", "-N", "ADMIN-OWN"])  # somebody else's chain stays
    argv = d.argv() + ["--remove-network"]
    cmd = ["nsenter", "--net=/run/netns/" + d.netns, "--"] + argv
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    busy = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert busy.returncode == 1 and "stop it before --remove-network" in busy.stderr.decode()
    assert "BERTH-FORWARD" in save(d, "iptables-save")
    d.kill(signal.SIGKILL)  # as if the service were stopped with live-restore: the veth stays
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = r.stdout.decode()
    assert r.returncode == 0 and out.startswith("bridges removed: berth0 br-"), (out, r.stderr)
    assert "veths removed: 1" in out or "veths removed: 2" in out, out  # web's, and the spare
    links = d.ns.ip("-o", "link")
    assert "berth0" not in links and "br-" not in links and "veth" not in links, links
    assert "out0" in links
    saved = save(d, "iptables-save")
    assert "BERTH" not in saved and ":ADMIN-OWN" in saved, saved
    again = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert again.returncode == 0 and "bridges removed: none; veths removed: 0" in again.stdout.decode()
    d.start()  # a reinstall: the records bring the networks back; and the fixture's cleanup
    assert d.berth("run", "--rm", "--network", "appnet", "busybox", "true").returncode == 0
    assert "br-" in d.ns.ip("-o", "link")
    assert d.berth("rm", "-f", "web").returncode == 0


def test_bridge_none_leaves_the_hosts_sysctls_and_iptables_alone(make):
    """With daemon.json `bridge: none`, containers on `none` and `host` and the network
    commands leave the host's iptables and ip_forward as they were; the first bridge network
    a user creates brings our chains and forwarding, as the default bridge does."""
    d = make({"bridge": "none"})
    d.ns.run(["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"])  # the test topology turned it on
    assert d.berth("run", "--rm", "busybox", "true").returncode == 0
    assert d.berth("network", "ls").returncode == 0
    assert "BERTH" not in save(d, "iptables-save")
    assert d.ns.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.decode().strip() == "0"
    assert d.berth("network", "create", "first").returncode == 0
    assert "-A FORWARD -j BERTH-FORWARD" in save(d, "iptables-save")
    assert d.ns.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.decode().strip() == "1"
    r = d.berth("run", "--rm", "--network", "first", "busybox", *wget("http://%s:9000/" % OUTSIDE, 5))
    assert r.returncode == 0 and r.stdout.decode() == "outside saw %s\n" % HOST_OUT, r.stderr
    assert d.berth("network", "rm", "first").returncode == 0
