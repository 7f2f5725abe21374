"""Network events as dockerd sends them (checked against dockerd 20.10 here): create and destroy
(name, type), connect before a run's `start` and disconnect after its `die` for every network it
is in (none: type null, host: type host, none for container: mode), connect/disconnect through
the API (a stopped container's connect waits for its start; its disconnect is said at once),
seen by the docker CLI's `events --filter type=network` and docker-py."""

import json
import time

from tests.network.test_berthd_networks import ok


def _events(d, since):
    """Every event since `since`, from the docker CLI."""
    out = ok(d.docker("events", "--since", "%.3f" % since, "--until", "%.3f" % (time.time() + 0.2),
                      "--format", "{{json .}}"))
    return [json.loads(line) for line in out.splitlines()]


def _brief(e):
    a = e["Actor"]["Attributes"]
    return e["Action"], a.get("name", ""), a.get("container", ""), a.get("type", "")


def test_network_events_of_runs_and_connects(clean):
    d = clean
    t0 = time.time()
    net_id = ok(d.berth("network", "create", "evnet")).strip()
    cid = ok(d.berth("run", "-d", "--network", "evnet", "--name", "evc", "busybox", "sleep", "100")).strip()
    mate = ok(d.berth("run", "-d", "--network", "container:evc", "--name", "evmate", "busybox", "sleep",
                      "100")).strip()
    ok(d.berth("network", "create", "evnet2"))
    ok(d.berth("network", "connect", "evnet2", "evc"))
    ok(d.berth("network", "disconnect", "evnet2", "evc"))
    ok(d.berth("rm", "-f", "evmate"))
    ok(d.berth("stop", "-t", "0", "evc"))
    ok(d.berth("network", "connect", "evnet2", "evc"))  # stopped: no event until it starts
    ok(d.berth("network", "disconnect", "evnet2", "evc"))  # stopped: said at once, as dockerd does
    ok(d.berth("rm", "evc"))
    ok(d.berth("network", "rm", "evnet", "evnet2"))
    ok(d.berth("run", "--rm", "--network", "none", "busybox", "true"))
    ok(d.berth("run", "--rm", "--network", "host", "busybox", "true"))
    evs = _events(d, t0)

    nets = [_brief(e) for e in evs if e["Type"] == "network" and e["Actor"]["Attributes"]["name"] in
            ("evnet", "evnet2")]
    assert nets == [
        ("create", "evnet", "", "bridge"),
        ("connect", "evnet", cid, "bridge"),
        ("create", "evnet2", "", "bridge"),
        ("connect", "evnet2", cid, "bridge"),
        ("disconnect", "evnet2", cid, "bridge"),
        ("disconnect", "evnet", cid, "bridge"),
        ("disconnect", "evnet2", cid, "bridge"),
        ("destroy", "evnet", "", "bridge"),
        ("destroy", "evnet2", "", "bridge"),
    ], nets
    assert not [e for e in evs if e["Actor"]["Attributes"].get("container") == mate], \
        "a container: mode container is in no network of its own"
    # the order around the container's own events; the Actor is the network's id
    evc = [(e["Type"], e["Action"]) for e in evs if (e["Type"], e["Actor"]["Attributes"].get("name")) in
           (("container", "evc"), ("network", "evnet"))]
    assert evc == [
        ("network", "create"), ("container", "create"), ("network", "connect"), ("container", "start"),
        ("container", "kill"), ("container", "die"), ("network", "disconnect"), ("container", "stop"),
        ("container", "destroy"), ("network", "destroy")], evc
    first = [e for e in evs if e["Type"] == "network" and e["Actor"]["Attributes"].get("container") == cid][0]
    assert first["Actor"]["ID"] == net_id and first["scope"] == "local" and "status" not in first

    client = d.client()
    try:
        got = list(client.events(since=t0, until=time.time() + 0.2, decode=True,
                                 filters={"type": "network", "network": ["none", "host"]}))
    finally:
        client.close()
    assert [_brief(e)[:2] + _brief(e)[3:] for e in got] == [
        ("connect", "none", "null"), ("disconnect", "none", "null"),
        ("connect", "host", "host"), ("disconnect", "host", "host")], got
