"""Volumes through the API with the three clients: create, ls, inspect, rm, prune."""

import json

import pytest

pytestmark = pytest.mark.timeout(120)


def test_volume_verbs_with_each_client(berthd):
    out = berthd.berth("volume", "create", "bv1")
    assert out.returncode == 0 and out.stdout.decode().strip() == "bv1"
    out = berthd.docker("volume", "create", "--label", "k=v", "dv1")
    assert out.returncode == 0 and out.stdout.decode().strip() == "dv1"
    client = berthd.client()
    try:
        vol = client.volumes.create("pv1", labels={"p": "1"})
        assert vol.name == "pv1"
        names = {v.name for v in client.volumes.list()}
        assert {"bv1", "dv1", "pv1"} <= names
        assert client.volumes.get("dv1").attrs["Labels"] == {"k": "v"}
    finally:
        client.close()
    out = berthd.berth("volume", "ls")
    lines = out.stdout.decode().splitlines()
    assert lines[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert ["local", "bv1"] in [line.split() for line in lines[1:]]
    out = berthd.docker("volume", "ls", "-q")
    assert {"bv1", "dv1", "pv1"} <= set(out.stdout.decode().split())
    status, headers, body = berthd.api("GET", "/v1.44/volumes")
    doc = json.loads(body)
    assert status == 200 and doc["Warnings"] == [] and isinstance(doc["Volumes"], list)


def test_volume_inspect_each_client(berthd):
    berthd.berth("volume", "create", "iv1")
    out = berthd.berth("volume", "inspect", "iv1")
    doc = json.loads(out.stdout)[0]
    assert doc["Name"] == "iv1" and doc["Driver"] == "local"
    assert doc["Mountpoint"].startswith(berthd.data_root)
    out = berthd.docker("volume", "inspect", "--format", "{{.Mountpoint}}", "iv1")
    assert out.stdout.decode().strip() == doc["Mountpoint"]
    out = berthd.berth("inspect", "iv1")
    assert json.loads(out.stdout)[0]["Name"] == "iv1"
    client = berthd.client()
    try:
        assert client.volumes.get("iv1").attrs["Mountpoint"] == doc["Mountpoint"]
    finally:
        client.close()


def test_volume_rm_and_prune(berthd):
    for name in ("rv1", "rv2", "rv3"):
        assert berthd.berth("volume", "create", name).returncode == 0
    out = berthd.berth("volume", "rm", "rv1")
    assert out.returncode == 0 and out.stdout.decode().strip() == "rv1"
    out = berthd.docker("volume", "rm", "rv2")
    assert out.returncode == 0
    out = berthd.berth("volume", "rm", "rv1")
    assert out.returncode == 1 and "rv1" in out.stderr.decode()
    status, headers, body = berthd.api("DELETE", "/volumes/rv1")
    assert status == 404 and headers["content-type"] == "application/json"
    out = berthd.berth("volume", "prune", "-f", "-a")
    assert out.returncode == 0 and "rv3" in out.stdout.decode()
    out = berthd.docker("volume", "ls", "-q")
    assert "rv3" not in out.stdout.decode().split()
    client = berthd.client()
    try:
        client.volumes.create("rv4")
        result = client.volumes.prune(filters={"all": "true"})
        assert "rv4" in (result.get("VolumesDeleted") or [])
    finally:
        client.close()
