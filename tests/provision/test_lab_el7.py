"""The EL7 path for real on an EL-shaped lab host (CentOS 7 os-release, yum = dnf): the vault
rewrite through --mirror pointing at a repo served on the lab bridge, the Docker CE repo with
its channel, `yum makecache` and `yum install` of stand-in RPMs through a real dnf."""

import pytest

from tests.provision.labutil import build_el7_mirror, known_hosts, provision_json, ssh_args

pytestmark = pytest.mark.lab


def test_el7_repos_makecache_and_install_through_real_dnf(plab, tmp_path):
    (h,) = plab.up(1, flavour="el7")
    kh = known_hosts([h], tmp_path / "kh")
    mirror_dir = build_el7_mirror(tmp_path / "mirror", packages=["berth-standin"])
    url = plab.serve_dir(str(mirror_dir))
    assert "mirrorlist.centos.org" in h.ssh("cat /etc/yum.repos.d/CentOS-Base.repo").stdout
    rc, reps = provision_json("check", h.ip, *ssh_args([h], kh))
    checks = {c["name"]: c for c in reps[h.ip]["checks"]}
    assert checks["distro"]["detail"].startswith("CentOS Linux 7")
    assert checks["eol"]["status"] == "warn" and "CentOS-Base.repo" in checks["eol"]["detail"]
    args = [
        "host",
        "--no-install",  # the repos and packages of the prepared host; test_install*.py test the install
        h.ip,
        "--mirror",
        url,
        "--no-gpgcheck",
        "--engine",
        "docker",
        "--channel",
        "test",
        "--package",
        "berth-standin",
        "--package",
        "docker-ce-standin",
        "--registry-mirror",
        "https://m.example",
        *ssh_args([h], kh),
    ]
    rc, reps = provision_json(*args)
    assert rc == 0, reps
    steps = {s["name"]: s for s in reps[h.ip]["steps"]}
    assert steps["package repos"]["status"] == "changed"
    assert any("makecache" in a for a in steps["package repos"]["actions"])
    assert any(
        "yum -y -q --releasever=7 install berth-standin docker-ce-standin" in a
        for a in steps["packages"]["actions"]
    )
    base = h.ssh("cat /etc/yum.repos.d/CentOS-Base.repo").stdout
    assert f"baseurl={url}/centos-vault/7.9.2009/os/$basearch/" in base and "mirrorlist=" not in base
    assert "mirrorlist.centos.org" in h.ssh("cat /etc/yum.repos.d/CentOS-Base.repo.berth-orig").stdout
    docker = h.ssh("cat /etc/yum.repos.d/docker-ce.repo").stdout
    assert (
        f"[docker-ce-test]\nname=Docker CE Test - $basearch\nbaseurl={url}/docker-ce/linux/centos/7/"
        in docker
    )
    assert h.ssh("rpm -q berth-standin docker-ce-standin").stdout.split() == [
        "berth-standin-1.0-1.el7.noarch",
        "docker-ce-standin-1.0-1.el7.noarch",
    ]
    assert '"https://m.example"' in h.ssh("cat /etc/docker/daemon.json").stdout
    # already installed is not fetched again: with the mirror gone the rerun still succeeds, 0 changed
    (mirror_dir.parent / "gone").mkdir()
    mirror_dir.rename(mirror_dir.parent / "gone" / "mirror")
    rc, reps = provision_json(*args)
    assert rc == 0 and reps[h.ip]["changed"] == 0, reps
    assert "already installed: berth-standin docker-ce-standin" in str(reps[h.ip]["steps"])
