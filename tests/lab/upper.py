"""What a host gets in its own overlay upper dir before it boots.

The base is shared and never written; everything per host (hostname, address, ssh host and
login keys, the EL7 disguise) is written here on the machine side. Nothing says which kernel
modules exist: like a cloud or microVM kernel with everything built in, a host has no
/lib/modules tree for the running kernel, so `modprobe` finds nothing and what is built in is
seen only as active (/proc/filesystems, /proc/sys/net/bridge).

Dirs are created with the mode and owner of the same dir in the base, because overlayfs shows
the upper dir's attributes, and paths are resolved through the base's symlinks (/lib ->
usr/lib) so an upper dir never hides a base symlink.
"""

import os
import pathlib

# timers that would run apt/dpkg/fstrim behind a test's back (and hold the dpkg lock)
MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
                "e2scrub_all.timer", "fstrim.timer", "e2scrub_reap.service"]

NETWORK = """\
[Match]
Name=host0

[Network]
Address={ip}/24
LinkLocalAddressing=no
IPv6AcceptRA=no
"""

EL7_OS_RELEASE = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"
"""
EL7_RELEASE = "CentOS Linux release 7.9.2009 (Core)\n"

_ML = "http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo={repo}&infra=$infra"
_BU = "#baseurl=http://mirror.centos.org/centos/$releasever/{repo}/$basearch/"


def _el7_section(section: str, title: str, repo: str, enabled: bool) -> str:
    return (f"[{section}]\nname=CentOS-$releasever - {title}\nmirrorlist={_ML.format(repo=repo)}\n"
            f"{_BU.format(repo=repo)}\ngpgcheck=1\n" + ("" if enabled else "enabled=0\n")
            + "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n")


#: CentOS-Base.repo as shipped by CentOS 7: its mirrorlist host is dead, on purpose.
EL7_BASE_REPO = "\n".join([
    _el7_section("base", "Base", "os", True),
    "#released updates \n" + _el7_section("updates", "Updates", "updates", True),
    "#additional packages that may be useful\n" + _el7_section("extras", "Extras", "extras", True),
    "#additional packages that extend functionality of existing packages\n"
    + _el7_section("centosplus", "Plus", "centosplus", False),
])


class Upper:
    """Writes files into a host's upper dir, shaped like the base."""

    def __init__(self, base: pathlib.Path, upper: pathlib.Path):
        self.base, self.upper = base, upper

    def resolve(self, rel: str) -> str:
        """`rel` with every symlink of the base resolved (staying inside the base)."""
        parts = [p for p in rel.strip("/").split("/") if p]
        done = []
        hops = 0
        while parts:
            part = parts.pop(0)
            cand = self.base.joinpath(*done, part)
            if cand.is_symlink() and parts:
                hops += 1
                if hops > 20:
                    raise OSError(f"symlink loop resolving {rel} in {self.base}")
                target = os.readlink(cand)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            if part == "..":
                done = done[:-1]
            elif part != ".":
                done.append(part)
        return "/".join(done)

    def mkdir(self, rel: str) -> pathlib.Path:
        """Create dir `rel` (and parents) in the upper dir with the base's attributes."""
        rel = self.resolve(rel)
        cur = self.upper
        done = []
        for part in rel.split("/"):
            done.append(part)
            cur = cur / part
            if cur.is_dir():
                continue
            cur.mkdir()
            ref = self.base.joinpath(*done)
            if ref.is_dir():
                st = ref.stat()
                os.chown(cur, st.st_uid, st.st_gid)
                cur.chmod(st.st_mode & 0o7777)
        return cur

    def write(self, rel: str, text: str, mode: int = 0o644, owner=(0, 0)) -> pathlib.Path:
        """Write a file at `rel` (parent dirs shaped like the base)."""
        rel = self.resolve(rel)
        parent, _, name = rel.rpartition("/")
        path = self.mkdir(parent) / name
        if path.is_symlink():
            path.unlink()
        path.write_text(text)
        os.chown(path, *owner)
        path.chmod(mode)
        return path

    def symlink(self, rel: str, target: str) -> None:
        """Create a symlink at `rel` pointing to `target`."""
        rel = self.resolve(rel)
        parent, _, name = rel.rpartition("/")
        path = self.mkdir(parent) / name
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)

    def owner_of(self, rel: str) -> tuple:
        """(uid, gid) of a path in the base."""
        st = (self.base / self.resolve(rel)).stat()
        return st.st_uid, st.st_gid


def prepare(up: Upper, name: str, ip: str, pubkey: str, host_keys: dict, flavour: str,
            nested: bool) -> None:
    """Write everything host `name` needs before its first boot."""
    up.write("etc/hostname", name + "\n")
    up.write("etc/hosts", f"127.0.0.1\tlocalhost\n{ip}\t{name}\n::1\tlocalhost ip6-localhost\n")
    up.write("etc/systemd/network/10-berth-lab.network", NETWORK.format(ip=ip))
    # debootstrap copied the machine's resolv.conf into the base; a host has no DNS at all
    up.write("etc/resolv.conf", "# berth lab host: no DNS, nothing beyond the lab bridge\n")
    for fname, text in host_keys.items():
        up.write(f"etc/ssh/{fname}", text, 0o644 if fname.endswith(".pub") else 0o600)
    up.write("root/.ssh/authorized_keys", pubkey, 0o600)
    up.mkdir("root/.ssh").chmod(0o700)
    uid_gid = up.owner_of("home/tester")
    up.write("home/tester/.ssh/authorized_keys", pubkey, 0o600, uid_gid)
    d = up.mkdir("home/tester/.ssh")
    os.chown(d, *uid_gid)
    d.chmod(0o700)
    for unit in MASKED_UNITS:
        up.symlink(f"etc/systemd/system/{unit}", "/dev/null")
    if nested:
        up.write("etc/berth-lab/nested", "1\n")
        up.mkdir("var/lib/berth")
    if flavour == "el7":
        _el7(up)
    elif flavour != "debian":
        raise ValueError(f"unknown flavour {flavour!r}: use 'debian' or 'el7'")


def _el7(up: Upper) -> None:
    up.write("etc/os-release", EL7_OS_RELEASE)
    up.write("usr/lib/os-release", EL7_OS_RELEASE)
    for f in ("etc/centos-release", "etc/redhat-release", "etc/system-release"):
        up.write(f, EL7_RELEASE)
    up.symlink("usr/bin/yum", "dnf")
    up.write("etc/yum.repos.d/CentOS-Base.repo", EL7_BASE_REPO)
    up.write("etc/dnf/vars/releasever", "7\n")
    up.write("etc/yum/vars/releasever", "7\n")
    up.symlink("etc/yum.conf", "dnf/dnf.conf")
