"""berthd killed with SIGKILL while five containers publish ports: they are served all along,
and after the restart; what belonged to containers that ended meanwhile is released; removing
everything leaves berthd's namespace as before."""

import json
import signal
import time

from tests.imagefactory import wait_for
from tests.network.conftest import http_get, snapshot
from tests.network.test_berthd_bridge import HTTPD
from tests.network.topology import HOST_OUT


def test_sigkill_restart_keeps_ports_and_reconciles(clean):
    d = clean
    for i in range(5):
        r = d.berth("run", "-d", "--name", "p%d" % i, "-p", "%d:80" % (18100 + i), "busybox", *HTTPD)
        assert r.returncode == 0, r.stderr
    r = d.berth("network", "create", "appnet")
    assert r.returncode == 0, r.stderr
    r = d.berth("run", "-d", "--name", "short", "--network", "appnet", "-p", "18110:80", "busybox",
                "sleep", "3")
    assert r.returncode == 0, r.stderr
    for i in range(5):
        assert wait_for(lambda i=i: http_get(d.outside.ns, HOST_OUT, 18100 + i), 5).startswith("hello from ")
    d.kill(signal.SIGKILL)
    for i in range(5):  # kernel state: served while the daemon is down
        assert http_get(d.outside.ns, HOST_OUT, 18100 + i).startswith("hello from ")
    time.sleep(3.5)  # 'short' exits while no daemon watches
    d.start()
    for i in range(5):
        assert http_get(d.outside.ns, HOST_OUT, 18100 + i).startswith("hello from ")
    ps = d.berth("ps").stdout.decode()
    assert "0.0.0.0:18104->80/tcp" in ps
    # the ended container's port rule, address and veth are gone; its port can be published again
    saved = d.ns.run(["iptables-save"]).stdout.decode()
    assert "--dport 18110" not in saved and "--dport 18104" in saved
    eps = json.loads(d.api("GET", "/networks/appnet")[2])["Containers"]
    assert eps == {}
    r = d.berth("run", "-d", "--name", "again", "-p", "18110:80", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: http_get(d.outside.ns, HOST_OUT, 18110), 5).startswith("hello from ")
    # a second kill and restart, then everything is removed: the clean fixture compares
    d.kill(signal.SIGKILL)
    d.start()
    assert http_get(d.outside.ns, HOST_OUT, 18110).startswith("hello from ")
    assert snapshot(d)[0]  # rules present until the containers go (the fixture removes them)


def test_rules_come_back_after_a_flush(clean):
    """What a `firewall-cmd --reload` does to our rules (every table flushed and its chains
    deleted), done by hand: berthd notices within seconds and puts them back. Then a flush of
    the nat table alone (the filter table intact), which must be noticed too."""
    d = clean
    r = d.berth("run", "-d", "--name", "web", "-p", "18120:80", "busybox", *HTTPD)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: http_get(d.outside.ns, HOST_OUT, 18120), 5).startswith("hello from ")
    d.proc.send_signal(signal.SIGSTOP)  # the flush is seen whole, not half put back already
    try:
        for table in ("filter", "nat"):
            assert d.ns.run(["iptables", "-t", table, "-F"]).returncode == 0
            assert d.ns.run(["iptables", "-t", table, "-X"]).returncode == 0
        assert "BERTH" not in d.ns.run(["iptables-save"]).stdout.decode()
    finally:
        d.proc.send_signal(signal.SIGCONT)
    assert wait_for(lambda: http_get(d.outside.ns, HOST_OUT, 18120, timeout=1), 10).startswith("hello from ")
    saved = d.ns.run(["iptables-save"]).stdout.decode()
    assert "-A FORWARD -j BERTH-USER" in saved and "-A POSTROUTING -j BERTH-POSTROUTING" in saved
    assert d.ns.run(["iptables", "-t", "nat", "-F"]).returncode == 0
    assert d.ns.run(["iptables", "-t", "nat", "-X"]).returncode == 0
    nat_jump = "-A POSTROUTING -j BERTH-POSTROUTING"
    assert wait_for(lambda: nat_jump in d.ns.run(["iptables-save"]).stdout.decode(), 10, step=0.2)
    assert wait_for(lambda: http_get(d.outside.ns, HOST_OUT, 18120, timeout=1), 10).startswith("hello from ")
