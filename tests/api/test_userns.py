"""daemon.json userns-remap through the docker CLI: root in the container is an unprivileged uid
on the host, volumes get the remapped owner, the image layers are shown to the remapped root
without a copy (idmapped mounts) or with one copy per remap (forced with BERTH_USERNS_IDMAP=0),
--userns=host opts out, what cannot go with a remap is refused, `info` says userns.

The user database and /etc/subuid, /etc/subgid are the test's own (BERTH_ID_ROOT): berthd's
`default` runs useradd --prefix there, never on the machine's /etc."""

import io
import json
import os
import shutil
import tarfile
import time

import pytest

from tests.api.conftest import Berthd

REMAP_UID = 100000


def _id_root(path):
    """A root holding only the files useradd --prefix and berthd read."""
    etc = path / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nalice:x:1500:1500::/home/alice:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nalice:x:1500:\n")
    for name in ("shadow", "gshadow"):
        (etc / name).write_text("")
        os.chmod(str(etc / name), 0o640)
    (etc / "subuid").write_text("")
    (etc / "subgid").write_text("")
    return str(path)


def _daemon(base, busybox_tar, id_root, env=None, config=None):
    d = Berthd(str(base), config=dict({"userns-remap": "default"}, **(config or {})),
               env=dict({"BERTH_ID_ROOT": id_root}, **(env or {})))
    d.start()
    with open(busybox_tar, "rb") as f:
        assert d.api("POST", "/images/load", body=f.read(),
                     headers={"Content-Type": "application/x-tar"})[0] == 200
    return d


@pytest.fixture(scope="module")
def remapped(tmp_path_factory, busybox_tar):
    base = tmp_path_factory.mktemp("userns")
    id_root = _id_root(base / "ids")
    d = _daemon(base / "d", busybox_tar, id_root)
    d.id_root = id_root
    yield d
    d.cleanup()


def _status_ids(pid):
    with open("/proc/%d/status" % pid) as f:
        lines = dict(line.split(":", 1) for line in f)
    return [int(x) for x in lines["Uid"].split()], [int(x) for x in lines["Gid"].split()]


def test_default_makes_the_berth_user_and_its_ranges(remapped):
    etc = os.path.join(remapped.id_root, "etc")
    with open(os.path.join(etc, "passwd")) as f:
        assert any(line.startswith("berth:") for line in f)
    for name in ("subuid", "subgid"):
        with open(os.path.join(etc, name)) as f:
            assert f.read() == "berth:%d:65536\n" % REMAP_UID
    info = json.loads(remapped.api("GET", "/info")[2])
    assert "name=userns" in info["SecurityOptions"]


def test_root_inside_is_an_unprivileged_uid_outside(remapped):
    r = remapped.docker("run", "-d", "--name", "sleeper", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        pid = json.loads(remapped.docker("inspect", "sleeper").stdout)[0]["State"]["Pid"]
        uids, gids = _status_ids(pid)
        assert uids == [REMAP_UID] * 4 and gids == [REMAP_UID] * 4
        r = remapped.docker("exec", "sleeper", "sh", "-c", "id; cat /proc/self/uid_map")
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode().split("\n")
        assert out[0].startswith("uid=0(root) gid=0(root)")
        assert out[1].split() == ["0", str(REMAP_UID), "65536"]
    finally:
        remapped.docker("rm", "-f", "sleeper")


def test_image_files_belong_to_the_remapped_root(remapped):
    """Without a copy: the layers' files show as root's inside, the container can change them, and
    what it writes lands in its upper dir with the remapped owner."""
    r = remapped.docker("run", "--name", "writer", "busybox", "sh", "-c",
                        "stat -c '%u:%g' /bin/busybox /etc && echo x >> /etc/passwd && mkdir /new "
                        "&& touch /new/f && hostname && echo 1.2.3.4 h >> /etc/hosts")
    try:
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split()[:2] == ["0:0", "0:0"]
        cid = json.loads(remapped.docker("inspect", "writer").stdout)[0]["Id"]
        upper = os.path.join(remapped.data_root, "containers", cid, "upper")
        for rel in ("etc/passwd", "new/f"):
            st = os.stat(os.path.join(upper, rel))
            assert (st.st_uid, st.st_gid) == (REMAP_UID, REMAP_UID), rel
        assert not os.path.exists(os.path.join(remapped.data_root, "%d.%d" % (REMAP_UID, REMAP_UID),
                                               "layers")), "idmapped layers are not copied"
    finally:
        remapped.docker("rm", "-f", "writer")


def test_volume_files_land_with_the_remapped_owner(remapped):
    r = remapped.docker("run", "--rm", "-v", "uvol:/data", "busybox", "sh", "-c",
                        "echo hi > /data/f && stat -c '%u' /data/f")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"0"]
    data = os.path.join(remapped.data_root, "volumes", "uvol", "_data")
    for p in (data, os.path.join(data, "f")):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (REMAP_UID, REMAP_UID), p
    remapped.docker("volume", "rm", "uvol")


def test_userns_host_opts_out(remapped):
    r = remapped.docker("run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"0", b"0", b"4294967295"]
    r = remapped.docker("run", "--rm", "--userns=host", "--privileged", "busybox", "true")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("flags, words", [
    (["--privileged"], b"privileged mode is incompatible with user namespaces"),
    (["--network", "host"], b"host's network namespace"),
    (["--pid", "host"], b"host's PID namespace"),
])
def test_refused_with_a_remap(remapped, flags, words):
    r = remapped.docker("create", *flags, "busybox", "true")
    assert r.returncode != 0 and words in r.stderr, r.stderr


def test_other_userns_modes_refused(remapped):
    status, _, body = remapped.api("POST", "/containers/create", body={
        "Image": "busybox", "HostConfig": {"UsernsMode": "private"}},
        headers={"Content-Type": "application/json"})
    assert status == 400 and b"UsernsMode 'private' is not supported" in body, body


def test_copied_layers_are_made_once_per_remap(tmp_path, busybox_tar):
    """Where overlay cannot take idmapped layers (forced here), each layer is copied once for the
    remap with shifted owners, a second container uses the same copy, and rmi removes it."""
    id_root = _id_root(tmp_path / "ids")
    d = _daemon(tmp_path / "d", busybox_tar, id_root, env={"BERTH_USERNS_IDMAP": "0"})
    try:
        layers = os.path.join(d.data_root, "%d.%d" % (REMAP_UID, REMAP_UID), "layers")
        r = d.docker("run", "--rm", "busybox", "sh", "-c", "stat -c '%u' /bin/busybox && touch /bin/x")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [b"0"]
        (copy,) = os.listdir(layers)  # busybox has one layer
        st = os.stat(os.path.join(layers, copy, "bin", "busybox"))
        assert (st.st_uid, st.st_gid) == (REMAP_UID, REMAP_UID)
        before = os.stat(os.path.join(layers, copy)).st_ino
        r = d.docker("run", "--rm", "busybox", "id", "-u")
        assert r.returncode == 0 and r.stdout.split() == [b"0"], r.stderr
        assert os.listdir(layers) == [copy] and os.stat(os.path.join(layers, copy)).st_ino == before
        r = d.docker("rmi", "busybox")
        assert r.returncode == 0, r.stderr
        assert os.listdir(layers) == [], "a deleted layer's remapped copy goes with it"
    finally:
        d.cleanup()


def test_bad_remap_values_stop_the_start(tmp_path):
    id_root = _id_root(tmp_path / "ids")
    for value, words in (("nosuch", "no user nosuch"), ("alice", "alice has no range")):
        d = Berthd(str(tmp_path / value), config={"userns-remap": value}, env={"BERTH_ID_ROOT": id_root})
        with pytest.raises(RuntimeError) as e:
            d.start()
        assert words in str(e.value)
        d.cleanup()
    shutil.rmtree(id_root)


def test_commit_and_build_keep_the_containers_own_ids(remapped, tmp_path):
    """A remapped container's layer holds the owners its root saw (0, 1000), not the host's."""
    r = remapped.docker("run", "--name", "tocommit", "busybox", "sh", "-c",
                        "touch /r && touch /u && chown 1000:1000 /u")
    assert r.returncode == 0, r.stderr
    try:
        assert remapped.docker("commit", "tocommit", "committed:1").returncode == 0
    finally:
        remapped.docker("rm", "-f", "tocommit")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN touch /b && chown 1000:1000 /b\n")
    r = remapped.berth("build", "-t", "built:1", str(tmp_path))
    assert r.returncode == 0, r.stderr
    for image, paths in (("committed:1", "/r /u"), ("built:1", "/b")):
        r = remapped.docker("run", "--rm", "--userns=host", image, "sh", "-c", "stat -c %u:%g " + paths)
        assert r.returncode == 0, r.stderr
        want = {"committed:1": ["0:0", "1000:1000"], "built:1": ["1000:1000"]}[image]
        assert r.stdout.decode().split() == want, image
        remapped.docker("rmi", image)


def test_cp_and_export_see_the_containers_own_ids(remapped, tmp_path):
    """docker cp in shifts the tar's owners to the remapped ids, cp out and export shift back."""
    src = tmp_path / "in.txt"
    src.write_text("x")
    os.chown(str(src), 1000, 1000)
    r = remapped.docker("run", "-d", "--name", "cpbox", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        for running in (True, False):
            assert remapped.docker("cp", "-a", str(src), "cpbox:/in.txt").returncode == 0
            r = remapped.docker("cp", "cpbox:/in.txt", "-")
            assert r.returncode == 0, r.stderr
            with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
                info = tf.getmember("in.txt")
            assert (info.uid, info.gid) == (1000, 1000), running
            if running:
                r = remapped.docker("exec", "cpbox", "stat", "-c", "%u:%g", "/in.txt", "/bin/busybox")
                assert r.stdout.split() == [b"1000:1000", b"0:0"], r.stderr
                remapped.docker("stop", "-t", "0", "cpbox")
        cid = json.loads(remapped.docker("inspect", "cpbox").stdout)[0]["Id"]
        st = os.stat(os.path.join(remapped.data_root, "containers", cid, "upper", "in.txt"))
        assert (st.st_uid, st.st_gid) == (REMAP_UID + 1000, REMAP_UID + 1000)
        r = remapped.docker("export", "cpbox")
        with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tf:
            owners = {m.name: (m.uid, m.gid) for m in tf.getmembers()}
        assert owners["in.txt"] == (1000, 1000) and owners["bin/busybox"] == (0, 0)
    finally:
        remapped.docker("rm", "-f", "cpbox")


def test_vfs_driver_shifts_the_containers_copy(tmp_path, busybox_tar):
    id_root = _id_root(tmp_path / "ids")
    d = _daemon(tmp_path / "d", busybox_tar, id_root, config={"storage-driver": "vfs"})
    try:
        r = d.docker("run", "--name", "vfsbox", "busybox", "sh", "-c",
                     "id -u && stat -c %u /bin/busybox && touch /n")
        assert r.returncode == 0 and r.stdout.split() == [b"0", b"0"], r.stderr
        cid = json.loads(d.docker("inspect", "vfsbox").stdout)[0]["Id"]
        rootfs = os.path.join(d.data_root, "containers", cid, "rootfs")
        for rel in ("bin/busybox", "n", "."):
            assert os.lstat(os.path.join(rootfs, rel)).st_uid == REMAP_UID, rel
        r = d.docker("commit", "vfsbox", "x:1")
        assert r.returncode != 0 and b"cannot be committed with the vfs storage driver" in r.stderr
    finally:
        d.cleanup()


def test_a_kernel_allowing_no_user_namespaces_is_named(tmp_path):
    from runtime.container import remap
    limit = tmp_path / "max_user_namespaces"
    limit.write_text("0\n")
    with pytest.raises(remap.RemapError) as e:
        remap.check_kernel(str(limit))
    assert "user.max_user_namespaces is 0" in str(e.value)
    limit.write_text("15000\n")
    remap.check_kernel(str(limit))


def test_health_checks_run_in_the_containers_user_namespace(remapped):
    r = remapped.docker("run", "-d", "--name", "checked", "--health-cmd", "cat /proc/self/uid_map",
                        "--health-interval", "1s", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        health = {}
        for _ in range(60):
            health = json.loads(remapped.docker("inspect", "checked").stdout)[0]["State"].get("Health") or {}
            if health.get("Log"):
                break
            time.sleep(0.25)
        assert health.get("Status") == "healthy", health
        assert health["Log"][-1]["Output"].split() == ["0", str(REMAP_UID), "65536"]
    finally:
        remapped.docker("rm", "-f", "checked")
