"""A container that is not running shows the endpoint settings it was created with for its
network (aliases, driver options), as dockerd does (docker-py's test_run_with_networking_config)."""

import json


def test_stopped_container_shows_its_configured_aliases(clean):
    d = clean
    assert d.berth("network", "create", "cfgnet").returncode == 0
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "cfgnet"},
            "NetworkingConfig": {"EndpointsConfig": {"cfgnet": {"Aliases": ["hello"],
                                                                "DriverOpts": {"key1": "a"}}}}}
    status, _, out = d.api("POST", "/containers/create?name=cfgd", body=body)
    assert status == 201, out
    nets = json.loads(d.api("GET", "/containers/cfgd/json")[2])["NetworkSettings"]["Networks"]
    assert list(nets) == ["cfgnet"]
    assert nets["cfgnet"]["Aliases"] == ["hello"] and nets["cfgnet"]["DriverOpts"] == {"key1": "a"}
    assert d.api("DELETE", "/containers/cfgd")[0] == 204
    assert d.berth("network", "rm", "cfgnet").returncode == 0
