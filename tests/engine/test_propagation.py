"""Bind propagation with a real shared source: in a mount namespace of the test's own (so no
host mount is touched), a shared tmpfs is bound into two containers, rslave and rprivate; a
mount made under it after they started reaches only the rslave one, as with dockerd."""

import os
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from runtime.container.proc import syscalls as sc
from tests.engine.conftest import make_engine, remove_all_containers
base, parent, tar = sys.argv[2], sys.argv[3], sys.argv[4]
sc.unshare(sc.CLONE_NEWNS)
sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
src = base + "/src"
os.makedirs(src)
sc.mount("tmpfs", src, "tmpfs", 0, "size=1m")
sc.mount(None, src, None, sc.MS_SHARED)
os.makedirs(src + "/sub")
eng = make_engine(base + "/root", {"cgroup-parent": parent})
with open(tar, "rb") as f:
    eng.image_load(f)
watch = ("for i in $(seq 100); do [ -e /b/sub/marker ] && echo seen && exit 0; sleep 0.05; done; "
         "echo unseen")
ids = {}
try:
    for mode in ("rslave", "rprivate"):
        ids[mode] = eng.container_create({"Image": "busybox:latest", "Cmd": ["sh", "-c", watch],
                                          "HostConfig": {"NetworkMode": "none",
                                                         "Binds": [src + ":/b:" + mode]}})["Id"]
        eng.container_start(ids[mode])
    sc.mount("tmpfs", src + "/sub", "tmpfs", 0, "size=1m")
    open(src + "/sub/marker", "w").close()
    for mode, cid in sorted(ids.items()):
        eng.container_wait(cid)
        out = b"".join(line for _, line in eng.container_logs(cid, stderr=False)).decode().strip()
        print("%s %s" % (mode, out))
finally:
    remove_all_containers(eng)
    eng.close()
"""


def test_rslave_bind_receives_host_mounts_rprivate_does_not(tmp_path, busybox_tar):
    parent = "berth-test-prop-" + uuid.uuid4().hex[:8]
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT, ROOT, str(tmp_path), parent, str(busybox_tar)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    finally:
        from runtime.container.proc import cgroups
        for mnt in set(cgroups.v1_mounts().values()):
            if os.path.isdir(mnt + "/" + parent):
                os.rmdir(mnt + "/" + parent)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.decode().split("\n")[:2] == ["rprivate unseen", "rslave seen"], out.stdout
