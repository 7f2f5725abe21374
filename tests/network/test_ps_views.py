"""`ps` of running containers follows their networks and ports: berthd keeps each container's
summary between listings (runtime/container/views.KeptSummary) and must make it again when a
connect or a disconnect changes the endpoint of a container that keeps running."""

from tests.network.test_berthd_networks import ok


def _ps(d, name):
    out = ok(d.berth("ps", "-a", "--filter", "name=^%s$" % name, "--format",
                     "{{.Networks}}|{{.Ports}}|{{.Status}}"))
    return out.strip()


def test_ps_follows_connects_and_disconnects_of_a_running_container(clean):
    d = clean
    ok(d.berth("network", "create", "psnet"))
    ok(d.berth("network", "create", "psnet2"))
    try:
        ok(d.berth("run", "-d", "--network", "psnet", "-p", "127.0.0.1:18091:80", "--name", "psc",
                   "busybox", "sleep", "100"))
        first = _ps(d, "psc")
        assert first.startswith("psnet|") and "18091" in first and "|Up " in first, first
        assert _ps(d, "psc").split("|")[:2] == first.split("|")[:2]  # a kept summary, same answer
        ok(d.berth("network", "connect", "psnet2", "psc"))
        assert _ps(d, "psc").split("|")[0] == "psnet,psnet2"
        ok(d.berth("network", "disconnect", "psnet", "psc"))
        assert _ps(d, "psc").split("|")[0] == "psnet2"
        ok(d.berth("stop", "-t", "0", "psc"))
        stopped = _ps(d, "psc")
        assert stopped.startswith("psnet2||Exited (137) "), stopped
        ok(d.berth("rename", "psc", "psc2"))
        assert _ps(d, "psc2").startswith("psnet2||Exited (137) ")
        assert _ps(d, "psc") == ""
    finally:
        d.berth("rm", "-f", "psc", "psc2")
        ok(d.berth("network", "rm", "psnet", "psnet2"))
