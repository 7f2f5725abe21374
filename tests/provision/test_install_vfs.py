"""A data root that cannot hold an overlay upper directory (here: on the lab host's own root,
which is overlayfs, as inside a container or on a live system): the preflight says so with the
fix, `provision host` still ends with the engine verified, on the vfs storage driver, and the
engine keeps the image model on it: layers, whiteouts, volumes, commit."""

import json
import shutil

import pytest

from provision import bundle
from tests.provision.installutil import committed_tree
from tests.provision.labutil import build_apt_repo, known_hosts, provision, provision_json, ssh_args

pytestmark = pytest.mark.lab

DATA_ROOT = "/srv/berth"  # on the host's overlayfs root (the nested /var/lib/berth is ext4)


@pytest.fixture(scope="module")
def host(plab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vfs")
    (h,) = plab.up(1, nested=True)
    url = plab.serve_dir(str(build_apt_repo(tmp / "mirror")))
    kh = known_hosts([h], tmp / "known_hosts")
    current = bundle.build(src=committed_tree(tmp / "committed") / "runtime")
    (tmp / current.filename).write_bytes(current.data)
    common = ["--data-root", DATA_ROOT, *ssh_args([h], kh)]
    yield h, common, ["--bundle", str(tmp / current.filename), "--mirror", url, "--no-gpgcheck", *common]
    plab.stop([h])


def test_overlay_data_root_preflight_then_engine_on_vfs(host):
    h, check_args, args = host
    assert h.exec(f"mkdir -p {DATA_ROOT} && stat -f -c %T {DATA_ROOT}").stdout.strip() == "overlayfs"
    rc, reps = provision_json("check", h.ip, *check_args)
    storage = {c["name"]: c for c in reps[h.ip]["checks"]}["storage"]
    assert rc == 0 and storage["status"] == "warn", storage
    assert "overlayfs" in storage["detail"] and "vfs" in storage["detail"]
    assert "ext4 or xfs" in storage["fix"]

    p = provision("host", f"root@{h.ip}", *args)
    out = " ".join(p.stdout.split())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "cannot hold an overlay upper directory" in out  # preflight warning in the report
    assert "WARNING" in out and "vfs" in out  # the engine's own warning, from the verify step

    info = json.loads(h.ssh("berth info -f json").stdout)
    assert info["Driver"] == "vfs" and info["DockerRootDir"] == DATA_ROOT
    assert any("vfs" in w for w in info.get("Warnings") or []), info.get("Warnings")
    text = h.ssh("berth info").stdout
    assert "Storage Driver: vfs" in text

    # an image of the machine's static busybox, imported on the host
    shutil.copy(shutil.which("busybox"), h.root_path("/root/busybox"))
    h.ssh(
        "d=$(mktemp -d) && mkdir -p $d/bin $d/etc/keep && install -m755 /root/busybox $d/bin/busybox && "
        "for a in sh rm cat echo test ls mkdir; do ln -s busybox $d/bin/$a; done && "
        "echo a > $d/etc/keep/a && echo b > $d/etc/keep/b && "
        "tar -C $d -cf - . | berth import - bb:1 >/dev/null && rm -rf $d /root/busybox"
    )
    # layers and whiteouts: a committed layer deletes /bin/cat and etc/keep/a, adds /etc/added
    h.ssh("berth run --name mod bb:1 sh -c 'rm /bin/cat /etc/keep/a && echo new > /etc/added'")
    h.ssh("berth commit mod bb:2 >/dev/null && berth rm mod")
    assert len(json.loads(h.ssh("berth inspect bb:2").stdout)[0]["RootFS"]["Layers"]) == 2
    seen = h.ssh("berth run --rm bb:2 sh -c 'ls /bin/cat 2>&1; ls /etc/keep; echo $(cat /etc/added)'")
    assert "No such file" in seen.stdout and seen.stdout.split()[-2:] == ["b", "new"], seen.stdout
    # a layer on top of the whiteouts: commit again, the deletions stay deleted
    h.ssh("berth run --name mod2 bb:2 sh -c 'mkdir /etc/more' && berth commit mod2 bb:3 >/dev/null")
    h.ssh("berth rm mod2")
    again = h.ssh("berth run --rm bb:3 sh -c 'ls /etc/keep /etc/more; test -e /bin/cat || echo nocat'")
    assert again.stdout.split() == ["/etc/keep:", "b", "/etc/more:", "nocat"], again.stdout
    # the base image is untouched by its container's deletions (the writable copy died with it)
    assert h.ssh("berth run --rm bb:1 ls /etc/keep").stdout.split() == ["a", "b"]
    # volumes outlive containers
    h.ssh("berth run --rm -v vfsvol:/data bb:1 sh -c 'echo kept > /data/f'")
    kept = h.ssh("berth run --rm -v vfsvol:/data bb:1 cat /data/f")
    assert kept.stdout.strip() == "kept"
    h.ssh("berth volume rm vfsvol && berth rmi bb:3 bb:2 bb:1")
