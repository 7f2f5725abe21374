"""A body field of the wrong JSON type is a 400 worded as dockerd's Go decoder words it, never a
500 from deep in the engine; a good body of each shape still works."""

import json
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("path,body,field", [
    ("/containers/create", {"Image": "busybox", "Cmd": 5}, "CreateRequest.Cmd"),
    ("/containers/create", {"Image": "busybox", "Env": "A=1"}, "CreateRequest.Env"),
    ("/containers/create", {"Image": "busybox", "Labels": ["a"]}, "CreateRequest.Labels"),
    ("/containers/create", {"Image": "busybox", "Volumes": ["/x"]}, "CreateRequest.Volumes"),
    ("/containers/create", {"Image": "busybox", "HostConfig": "x"}, "CreateRequest.HostConfig"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "1g"}},
     "CreateRequest.HostConfig.Memory"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"Mounts": [{"ReadOnly": "yes"}]}},
     "CreateRequest.HostConfig.Mounts.ReadOnly"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": 1}}},
     "CreateRequest.HostConfig.RestartPolicy.Name"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"BlkioWeight": -1}},
     "CreateRequest.HostConfig.BlkioWeight"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"cpushares": "x"}},
     "CreateRequest.HostConfig.CpuShares"),
    ("/containers/upd/update", {"Memory": "1g"}, "UpdateConfig.Memory"),
    ("/volumes/create", {"Name": 5}, "CreateOptions.Name"),
    ("/volumes/create", {"Labels": "x"}, "CreateOptions.Labels"),
])
def test_wrong_types_are_400(loaded, path, body, field):
    status, _, out = loaded.api("POST", path, body=body)
    assert status == 400, out
    message = json.loads(out)["message"]
    assert message.startswith("invalid JSON: json: cannot unmarshal ") and field + " " in message


def test_good_bodies_still_work(loaded):
    body = {"Image": "busybox", "Cmd": "true", "Entrypoint": None, "Env": ["A=1"],
            "Labels": {"k": "v"}, "HostConfig": {"Memory": 0, "Mounts": [], "RestartPolicy": None}}
    status, _, out = loaded.api("POST", "/containers/create?name=goodbody", body=body)
    assert status == 201, out
    doc = json.loads(loaded.api("GET", "/containers/goodbody/json")[2])
    assert doc["Config"]["Cmd"] == ["true"] and doc["Path"] == "true"
    assert loaded.api("DELETE", "/containers/goodbody")[0] == 204
    status, _, out = loaded.api("GET", "/images/json?filters=" + quote(json.dumps({"dangling": ["maybe"]})))
    assert status == 400 and b"invalid filter 'dangling=maybe'" in out


def test_a_field_name_in_another_case_is_that_field(loaded):
    """Go's decoder matches names whatever their case: docker-py sends CPURealtimePeriod, which
    berthd refuses by name rather than ignore."""
    body = {"Image": "busybox", "HostConfig": {"CPURealtimePeriod": 1000, "CPURealtimeRuntime": 500}}
    status, _, out = loaded.api("POST", "/containers/create", body=body)
    assert status == 400 and b"CpuRealtime" in out, out
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"memory": 64 << 20, "PIDSLIMIT": 9}}
    status, _, out = loaded.api("POST", "/containers/create?name=cased", body=body)
    assert status == 201, out
    hc = json.loads(loaded.api("GET", "/containers/cased/json")[2])["HostConfig"]
    assert hc["Memory"] == 64 << 20 and hc["PidsLimit"] == 9
    assert loaded.api("DELETE", "/containers/cased")[0] == 204
