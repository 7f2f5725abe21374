"""Volumes: the local driver's verbs, bind mounts, anonymous volumes and copy-up, and the
guide's point that volume data outlives the container while its writable layer does not."""

import os

import pytest

from runtime.errors import Conflict, InvalidParameter, NotFound
from tests import imagefactory
from tests.engine.conftest import run_container

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


@pytest.fixture(scope="module")
def volimg(ctr_engine, tmp_path_factory):
    """volimg:1 = busybox + /vol/seed in the image, VOLUME /vol."""
    layer = imagefactory.layer_tar([("dir", "vol"), ("file", "vol/seed", b"seeded\n")])
    path = imagefactory.busybox_image_tar(tmp_path_factory.mktemp("volimg") / "v.tar", ref="volimg:1",
                                          layers=[layer], volumes=["/vol"])
    with open(path, "rb") as f:
        ctr_engine.image_load(f)
    return "volimg:1"


@pytest.fixture
def vols(clean_containers):
    yield clean_containers
    for v in clean_containers.volume_list():
        clean_containers.volume_remove(v["Name"])


def test_volume_verbs_and_json(vols):
    eng = vols
    v = eng.volume_create("data1", labels={"team": "a"})
    assert v == {"Name": "data1", "Driver": "local", "Mountpoint": str(eng.test_root / "volumes/data1/_data"),
                 "CreatedAt": v["CreatedAt"], "Labels": {"team": "a"}, "Scope": "local", "Options": None}
    assert v["CreatedAt"].endswith("Z")
    assert os.path.isdir(v["Mountpoint"])
    assert eng.volume_create("data1") == v  # existing: unchanged
    eng.volume_create("other")
    assert [x["Name"] for x in eng.volume_list()] == ["data1", "other"]
    assert [x["Name"] for x in eng.volume_list({"label": ["team=a"]})] == ["data1"]
    assert [x["Name"] for x in eng.volume_list({"name": ["oth"]})] == ["other"]
    assert eng.volume_inspect("data1") == v
    with pytest.raises(NotFound, match="no such volume"):
        eng.volume_inspect("missing")
    with pytest.raises(InvalidParameter, match="invalid volume name"):
        eng.volume_create("bad/name")
    with pytest.raises(InvalidParameter, match="driver"):
        eng.volume_create("x1", driver="nfs")
    eng.volume_remove("other")
    assert [x["Name"] for x in eng.volume_list()] == ["data1"]
    with pytest.raises(NotFound):
        eng.volume_remove("other")


def test_volume_in_use_and_prune(vols, volimg):
    eng = vols
    eng.volume_create("named")
    cid = eng.container_create({"Image": volimg, "Cmd": ["true"],
                                "HostConfig": {"Binds": ["named:/data"]}})["Id"]
    anon = [m["Name"] for m in eng.container_inspect(cid)["Mounts"] if m["Destination"] == "/vol"][0]
    assert len(anon) == 64
    with pytest.raises(Conflict, match="volume is in use"):
        eng.volume_remove("named")
    assert eng.volume_prune() == {"VolumesDeleted": [], "SpaceReclaimed": 0}  # both in use
    assert [v["Name"] for v in eng.volume_list({"dangling": ["true"]})] == []
    eng.container_remove(cid)
    assert sorted(v["Name"] for v in eng.volume_list({"dangling": ["true"]})) == sorted([anon, "named"])
    res = eng.volume_prune()  # anonymous ones only, like Docker 23+
    assert res["VolumesDeleted"] == [anon]
    assert [v["Name"] for v in eng.volume_list()] == ["named"]
    assert eng.volume_prune({"all": ["true"]})["VolumesDeleted"] == ["named"]
    assert eng.volume_list() == []


def test_volume_outlives_container_but_layer_does_not(vols):
    eng = vols
    hc = {"Binds": ["keep:/data"]}
    code, _, _, _ = run_container(eng, "echo kept > /data/v; echo lost > /layer", HostConfig=hc)
    assert code == 0
    assert eng.volume_inspect("keep")["Name"] == "keep"  # created on first use
    code, out, _, _ = run_container(eng, "cat /data/v; cat /layer 2>&1", HostConfig=hc)
    assert out.startswith(b"kept\n") and b"No such file" in out


def test_copy_up_fills_new_volumes_from_the_image(vols, volimg):
    eng = vols
    code, out, _, info = run_container(eng, "cat /vol/seed; echo more > /vol/added", image=volimg)
    assert out == b"seeded\n"
    anon = [m for m in info["Mounts"] if m["Destination"] == "/vol"][0]
    assert anon["Type"] == "volume" and anon["Driver"] == "local" and anon["RW"]
    with open(os.path.join(anon["Source"], "seed")) as f:
        assert f.read() == "seeded\n"
    # a named volume that already has data is not overwritten; an empty new one is filled
    code, out, _, _ = run_container(eng, "ls /vol", image=volimg, HostConfig={"Binds": ["fresh:/vol"]})
    assert out == b"seed\n"
    with open(os.path.join(eng.volume_inspect("fresh")["Mountpoint"], "seed"), "w") as f:
        f.write("changed\n")
    code, out, _, _ = run_container(eng, "cat /vol/seed", image=volimg, HostConfig={"Binds": ["fresh:/vol"]})
    assert out == b"changed\n"
    code, out, _, _ = run_container(eng, "ls /vol | wc -l", image=volimg,
                                    HostConfig={"Binds": ["nocp:/vol:nocopy"]})
    assert out == b"0\n"
    # rm -v removes the anonymous volumes
    cid = eng.container_create({"Image": volimg, "Cmd": ["true"]})["Id"]
    anon = [m["Name"] for m in eng.container_inspect(cid)["Mounts"]][0]
    eng.container_remove(cid, volumes=True)
    with pytest.raises(NotFound):
        eng.volume_inspect(anon)


def test_bind_mounts_rw_ro_and_mounts_api(vols, tmp_path):
    eng = vols
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in").write_text("from host\n")
    code, out, err, info = run_container(eng, "cat /h/in; echo back > /h/out; touch /r/x 2>&1; "
                                              "echo t > /t/f && grep ' /t ' /proc/mounts",
                                         HostConfig={"Binds": ["%s:/h" % host, "%s:/r:ro" % host],
                                                     "Mounts": [{"Type": "tmpfs", "Target": "/t"}]})
    text = out.decode()
    assert text.startswith("from host\n") and "Read-only file system" in text and "tmpfs /t tmpfs" in text
    assert (host / "out").read_text() == "back\n"
    assert not (host / "x").exists()
    points = {m["Destination"]: m for m in info["Mounts"]}
    assert points["/h"] == {"Type": "bind", "Source": str(host), "Destination": "/h", "Mode": "", "RW": True,
                            "Propagation": "rprivate"}
    assert points["/r"]["RW"] is False and points["/r"]["Mode"] == "ro"
    code, out, _, info = run_container(eng, "cat /m/in", HostConfig={"Mounts": [
        {"Type": "bind", "Source": str(host), "Target": "/m", "ReadOnly": True},
        {"Type": "volume", "Source": "viamounts", "Target": "/v"}]})
    assert out == b"from host\n"
    assert eng.volume_inspect("viamounts")["Name"] == "viamounts"
    with pytest.raises(InvalidParameter, match="mount path must be absolute"):
        eng.container_create({"Image": "busybox", "Cmd": ["true"],
                              "HostConfig": {"Binds": ["%s:rel" % host]}})
    with pytest.raises(InvalidParameter, match="Duplicate mount point"):
        eng.container_create({"Image": "busybox", "Cmd": ["true"],
                              "HostConfig": {"Binds": ["%s:/a" % host, "%s:/a" % host]}})


def test_config_volumes_get_anonymous_volumes(vols):
    eng = vols
    cid = eng.container_create({"Image": "busybox", "Cmd": ["true"], "Volumes": {"/scratch": {}}})["Id"]
    (point,) = eng.container_inspect(cid)["Mounts"]
    assert point["Destination"] == "/scratch" and point["Type"] == "volume" and len(point["Name"]) == 64
    eng.container_remove(cid, volumes=True)
    assert eng.volume_list() == []
