"""`provision check` over real SSH: passes on a lab host, fails with the right message when the
host is made to look wrong (faults made ON the host: uname wrapper, os-release, an empty
/proc/sys/net/bridge as a kernel without br_netfilter has, a real XFS without ftype mounted at
the data root). Lab hosts have br_netfilter and overlay built in and no modules tree."""

import subprocess

import pytest

from tests.provision.labutil import known_hosts, provision, provision_json, ssh_args

pytestmark = pytest.mark.lab

UNAME_WRAPPER = """#!/bin/sh
case "$1" in
  -m) echo i686 ;;
  -r) echo 3.9.0-1.el7.i686 ;;
  *) exec /bin/uname "$@" ;;
esac
"""


@pytest.fixture(scope="module")
def hosts(plab):
    return plab.up(2)


@pytest.fixture(scope="module")
def kh(hosts, tmp_path_factory):
    return known_hosts(hosts, tmp_path_factory.mktemp("kh") / "known_hosts")


def test_check_passes_on_a_lab_host(hosts, kh):
    h = hosts[0]
    p = provision("check", h.ip, *ssh_args(hosts, kh))
    assert p.returncode == 0, p.stdout + p.stderr
    for name in (
        "distro",
        "kernel",
        "arch",
        "systemd",
        "overlayfs",
        "d_type",
        "br_netfilter",
        "cgroups",
        "userns",
        "kmem",
        "selinux",
        "apparmor",
        "space",
        "eol",
    ):
        assert name in p.stdout
    rc, reps = provision_json("check", h.ip, *ssh_args(hosts, kh))
    checks = {c["name"]: c["status"] for c in reps[h.ip]["checks"]}
    assert rc == 0 and "fail" not in checks.values() and checks["systemd"] == "pass"


@pytest.fixture
def xfs_without_ftype(tmp_path):
    """A real XFS whose superblock lacks the ftype feature (this kernel has no XFS v4, so
    `mkfs.xfs -n ftype=0` cannot be mounted here; clearing the v5 FTYPE incompat bit gives
    the same filesystem property: readdir returns no d_type)."""
    img = tmp_path / "noftype.img"
    subprocess.run(["truncate", "-s", "320M", str(img)], check=True)
    subprocess.run(["mkfs.xfs", "-q", str(img)], check=True)
    out = subprocess.run(
        ["xfs_db", "-c", "sb 0", "-c", "print features_incompat", str(img)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    val = int(out.split("=")[1], 16) & ~1
    subprocess.run(
        ["xfs_db", "-x", "-c", "sb 0", "-c", f"write -d features_incompat {val}", str(img)],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(img)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    yield loop
    subprocess.run(["losetup", "-d", loop])


def test_check_fails_with_the_right_messages_on_a_faulty_host(hosts, kh, xfs_without_ftype):
    h = hosts[1]
    st = subprocess.run(["stat", "-c", "%t %T", xfs_without_ftype], stdout=subprocess.PIPE, text=True).stdout
    major, minor = (int(x, 16) for x in st.split())
    h.exec(
        f"mknod /dev/berth-xfs b {major} {minor} && mkdir -p /var/lib/berth && "
        f"mount -t xfs /dev/berth-xfs /var/lib/berth"
    )
    try:
        h.exec("cat > /usr/local/bin/uname && chmod 755 /usr/local/bin/uname", input=UNAME_WRAPPER)
        h.exec(
            "cp /etc/os-release /root/os-release.orig && printf 'ID=plan9\\nVERSION_ID=4\\n"
            'PRETTY_NAME="Plan 9 from Bell Labs"\\n\' > /etc/os-release'
        )
        h.exec("mount -t tmpfs -o ro nobridge /proc/sys/net/bridge")
        p = provision("check", h.ip, *ssh_args(hosts, kh))
        out = " ".join(p.stdout.split())
        assert p.returncode == 1, out
        assert "i686 is a 32-bit architecture" in out
        assert "kernel 3.9.0-1.el7.i686 is older than 3.10" in out
        assert "unsupported OS Plan 9 from Bell Labs" in out and "--distro-like el|debian" in out
        assert "XFS formatted with ftype=0 has no d_type" in out and "mkfs.xfs -n ftype=1" in out
        rc, reps = provision_json("check", h.ip, "--distro-like", "debian", *ssh_args(hosts, kh))
        checks = {c["name"]: c["status"] for c in reps[h.ip]["checks"]}
        assert checks["distro"] == "pass" and checks["arch"] == "fail" and checks["d_type"] == "fail"
        br = {c["name"]: c for c in reps[h.ip]["checks"]}["br_netfilter"]
        assert br["status"] == "fail" and "neither loaded, built in nor loadable" in br["detail"], br
        # `provision host` refuses such a host before touching anything
        p = provision("host", h.ip, "--distro-like", "debian", *ssh_args(hosts, kh))
        assert p.returncode == 1 and "preflight" in p.stdout
        assert h.exec("test -e /etc/sysctl.d/99-berth.conf", check=False).returncode != 0
    finally:
        h.exec(
            "umount /var/lib/berth; umount /proc/sys/net/bridge; rm -f /dev/berth-xfs /usr/local/bin/uname; "
            "cp /root/os-release.orig /etc/os-release",
            check=False,
        )
