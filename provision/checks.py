"""Preflight checks: verdicts (pass / warn / fail, each with its fix) computed from facts."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from provision.distros import Platform, detect
from provision.errors import UnsupportedError
from provision.facts.system import MODULE_USABLE, module_state

PASS, WARN, FAIL = "pass", "warn", "fail"
GOOD_ARCH = {"x86_64", "aarch64"}
BAD_ARCH = {"i386", "i486", "i586", "i686", "armv6l", "armv7l", "armv7", "armhf", "arm"}
V1_NEEDED = ("cpu", "memory", "pids", "devices")


@dataclass
class Check:
    """One verdict."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def parse_kernel(release: str) -> tuple[int, int, int]:
    """``3.10.0-1160.el7.x86_64`` -> (3, 10, 0); ``6.1`` -> (6, 1, 0); unparsable -> (0, 0, 0)."""
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", release or "")
    if not m:
        return (0, 0, 0)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def check_distro(facts: dict, distro_like: str | None) -> tuple[Check, Platform | None]:
    try:
        plat = detect(facts.get("os_release") or {}, distro_like)
    except UnsupportedError as e:
        return Check("distro", FAIL, str(e), "pass --distro-like el|debian if it is compatible"), None
    how = f" (treated as {plat.family} by --distro-like)" if plat.overridden else ""
    return Check("distro", PASS, f"{plat.pretty}{how}"), plat


def check_kernel(uname: dict) -> Check:
    rel = uname.get("release", "")
    v = parse_kernel(rel)
    if v < (3, 10, 0):
        return Check(
            "kernel",
            FAIL,
            f"kernel {rel or '?'} is older than 3.10",
            "upgrade the kernel to 3.10 or newer (yum update kernel / apt install linux-image-*) and reboot",
        )
    return Check("kernel", PASS, f"kernel {rel}")


def check_arch(uname: dict) -> Check:
    arch = uname.get("machine", "?")
    if arch in GOOD_ARCH:
        return Check("arch", PASS, f"{arch} (64-bit)")
    if arch in BAD_ARCH:
        return Check(
            "arch",
            FAIL,
            f"{arch} is a 32-bit architecture: not supported",
            "use an x86_64 or aarch64 machine and OS",
        )
    return Check("arch", WARN, f"{arch} is untested", "x86_64 and aarch64 are the supported architectures")


def check_systemd(init: dict) -> Check:
    pid1 = init.get("pid1", "?")
    if pid1 == "systemd" and init.get("booted") == "yes":
        state = init.get("state", "")
        return Check("systemd", PASS, f"systemd is PID 1 ({state or 'running'})")
    return Check(
        "systemd",
        WARN,
        f"systemd is not PID 1 (PID 1 is {pid1})",
        "modules-load.d and sysctl.d files apply at boot only under systemd; they are applied live now",
    )


def check_overlay(facts: dict) -> Check:
    state = module_state(facts, "overlay")
    if state in MODULE_USABLE:
        return Check("overlayfs", PASS, f"overlay filesystem available ({_STATE_WORDS[state]})")
    return Check(
        "overlayfs",
        FAIL,
        "overlayfs is not available in this kernel",
        "use a kernel with CONFIG_OVERLAY_FS (EL7: 3.10.0-514 or newer; install kernel-modules)",
    )


_STATE_WORDS = {"loaded": "loaded", "builtin": "built into the kernel", "loadable": "loadable module"}

# Filesystems that cannot hold an overlay upper directory (no d_type, no trusted xattrs or
# whiteout devices, or overlayfs itself), as dockerd's overlay2 driver refuses them.
NO_OVERLAY_UPPER = {
    "overlayfs": "overlayfs",
    "overlay": "overlayfs",
    "nfs": "NFS",
    "nfs4": "NFS",
    "cifs": "CIFS/SMB",
    "smb2": "CIFS/SMB",
    "smb": "CIFS/SMB",
    "ecryptfs": "eCryptfs",
    "aufs": "aufs",
    "fuseblk": "FUSE",
    "fuse": "FUSE",
    "v9fs": "9p",
    "msdos": "FAT",
    "vfat": "FAT",
}
STORAGE_DRIVERS = ("overlay2", "vfs")


def check_storage(dr: dict, data_root: str, forced: str | None = None) -> Check:
    """Can the data root hold overlay upper directories? If not the engine falls back to vfs."""
    fstype = dr.get("fstype", "?")
    where = f"{data_root} is on {dr.get('mountpoint', '?')}"
    if forced == "vfs":
        return Check("storage", WARN, "storage-driver vfs is forced in daemon.json (a full copy per "
                     "container: slow, more disk)", "drop storage-driver to let overlay2 be used")
    bad = NO_OVERLAY_UPPER.get(fstype)
    if bad is None:
        return Check("storage", PASS, f"overlay2 ({where}, {fstype})")
    fix = (
        f"put {data_root} on ext4 or xfs (ftype=1): mount a disk there or pick --data-root on one"
    )
    if forced == "overlay2":
        return Check("storage", FAIL, f"{where} ({bad}), which cannot hold an overlay upper "
                     "directory, and storage-driver overlay2 is forced", fix)
    return Check(
        "storage",
        WARN,
        f"{where} ({bad}), which cannot hold an overlay upper directory: the engine will use the "
        "vfs storage driver (a full copy per container: slow, more disk)",
        fix,
    )


def check_dtype(dr: dict, data_root: str) -> Check:
    fstype = dr.get("fstype", "?")
    where = f"{dr.get('mountpoint', '?')} ({fstype}) under {data_root}"
    if fstype == "xfs":
        xfs = dr.get("xfs", "")
        if xfs == "ftype=1":
            return Check("d_type", PASS, f"{where}: xfs ftype=1")
        if xfs == "ftype=0":
            return Check(
                "d_type",
                FAIL,
                f"{where}: XFS formatted with ftype=0 has no d_type, overlay needs it",
                "reformat with `mkfs.xfs -n ftype=1` (after a backup) or pick --data-root on another "
                "filesystem",
            )
        return Check(
            "d_type",
            WARN,
            f"{where}: could not read the XFS ftype",
            f"run `xfs_info {dr.get('mountpoint', '/')}`: ftype must be 1",
        )
    if fstype in ("ext2/ext3", "ext4", "ext3", "btrfs", "tmpfs", "overlayfs", "overlay", "zfs", "f2fs"):
        return Check("d_type", PASS, f"{where}: supports d_type")
    return Check(
        "d_type", WARN, f"{where}: d_type support unknown", "put the data root on ext4 or xfs (ftype=1)"
    )


def check_br_netfilter(facts: dict) -> Check:
    state = module_state(facts, "br_netfilter")
    if state in MODULE_USABLE:
        return Check("br_netfilter", PASS, f"br_netfilter available ({_STATE_WORDS[state]})")
    rel = facts.get("uname", {}).get("release", "?")
    return Check(
        "br_netfilter",
        FAIL,
        f"br_netfilter is neither loaded, built in nor loadable for kernel {rel}",
        "install the kernel's modules package (kernel-modules / linux-modules-extra-$(uname -r))",
    )


def check_cgroups(facts: dict) -> Check:
    fstypes = [(mp, fs) for mp, fs, _ in facts.get("mounts", []) if fs in ("cgroup", "cgroup2")]
    if not fstypes:
        return Check(
            "cgroups", FAIL, "no cgroup filesystem mounted", "boot with systemd or mount /sys/fs/cgroup"
        )
    v1 = {mp.rsplit("/", 1)[-1] for mp, fs in fstypes if fs == "cgroup"}
    v1_ctrls = {c for name in v1 for c in name.split(",")}
    if v1_ctrls:
        missing = [c for c in V1_NEEDED if c not in v1_ctrls]
        if missing:
            return Check(
                "cgroups",
                FAIL,
                f"cgroup v1 controllers missing: {', '.join(missing)}",
                "mount them under /sys/fs/cgroup (systemd does this at boot)",
            )
        return Check(
            "cgroups", PASS, "cgroup v1 controllers mounted" + (" (hybrid)" if len(fstypes) > len(v1) else "")
        )
    return Check("cgroups", PASS, "cgroup v2 (unified)")


def check_userns(sysctl: dict) -> Check:
    val = sysctl.get("user.max_user_namespaces")
    if val is None:
        return Check("userns", WARN, "user.max_user_namespaces not readable", "")
    if val.strip() == "0":
        return Check(
            "userns",
            WARN,
            "user.max_user_namespaces = 0 (the CentOS 7 default): user namespaces off",
            "echo user.max_user_namespaces=15000 > /etc/sysctl.d/90-userns.conf && sysctl --system",
        )
    return Check("userns", PASS, f"user.max_user_namespaces = {val}")


def check_kmem(uname: dict, cmdline: str) -> Check:
    v = parse_kernel(uname.get("release", ""))
    if v[:2] == (3, 10) and "cgroup.memory=nokmem" not in cmdline:
        return Check(
            "kmem",
            WARN,
            "3.10 kernel: kernel-memory accounting leaks slab caches under containers",
            "add cgroup.memory=nokmem to the kernel command line (grubby --update-kernel=ALL "
            "--args=cgroup.memory=nokmem) and reboot",
        )
    return Check("kmem", PASS, "no kmem accounting leak" + (" (nokmem set)" if v[:2] == (3, 10) else ""))


def selinux_enabled(facts: dict) -> bool:
    """Whether the kernel runs SELinux (enforcing or permissive)."""
    return (facts.get("selinux") or {}).get("enforce") in ("0", "1")


def check_selinux(se: dict, packages: set | None = None) -> Check:
    """SELinux on: containers are labelled (container_t) only with container-selinux's policy."""
    mode = {"1": "enforcing", "0": "permissive"}.get(se.get("enforce") or "")
    if not mode:
        return Check("selinux", PASS, f"SELinux {se.get('config') or 'disabled'}")
    if "container-selinux" in (packages or set()):
        return Check("selinux", PASS, f"SELinux {mode} with container-selinux: containers run as container_t")
    return Check(
        "selinux",
        WARN if mode == "enforcing" else PASS,
        f"SELinux {mode} without the container-selinux policy: containers get no SELinux labels"
        + (" and may be denied" if mode == "enforcing" else ""),
        "provision host installs it (yum install container-selinux) and sets selinux-enabled in daemon.json",
    )


def check_apparmor(aa: dict) -> Check:
    """AppArmor on without apparmor_parser (a minimal Debian/Ubuntu image): the engine, as
    dockerd, then runs containers without a profile; say so and how to get one."""
    if aa.get("enabled", "").startswith("Y") and "parser" not in aa:
        return Check(
            "apparmor",
            WARN,
            "AppArmor is on but apparmor_parser is missing: containers run without an AppArmor profile",
            "install the apparmor package, then restart the engine to load berth-default",
        )
    if aa.get("enabled", "").startswith("Y"):
        return Check("apparmor", PASS, "AppArmor on: containers get the berth-default profile")
    return Check("apparmor", PASS, "AppArmor not in use")


def check_space(dr: dict, min_free_gb: float) -> Check:
    try:
        gb = int(dr.get("avail_kb", "0")) / 1024 / 1024
    except ValueError:
        return Check("space", WARN, "free space unknown", "")
    where = dr.get("mountpoint", "?")
    if gb < min_free_gb:
        return Check(
            "space",
            FAIL,
            f"{gb:.1f} GiB free on {where}, need {min_free_gb:g}",
            "free space or pick --data-root on a bigger filesystem",
        )
    if gb < 4 * min_free_gb:
        return Check("space", WARN, f"only {gb:.1f} GiB free on {where}", "images need room: free some space")
    return Check("space", PASS, f"{gb:.1f} GiB free on {where}")


def check_eol(plat: Platform | None, facts: dict) -> Check:
    if plat is None:
        return Check("eol", WARN, "unknown distribution", "")
    past, dead, note = plat.eol()
    if not past:
        return Check("eol", PASS, f"{plat.pretty} is supported upstream")
    if dead:
        dead_files = facts.get("repos") or []
        detail = f"{plat.pretty}: {note}" + (
            f" (still used by {', '.join(dead_files)})" if dead_files else ""
        )
        return Check("eol", WARN, detail, "`provision host` writes working repo files (vault or --mirror)")
    return Check("eol", WARN, f"{plat.pretty}: {note}", "plan an upgrade")


def run_checks(
    facts: dict,
    distro_like: str | None = None,
    data_root: str = "/var/lib/berth",
    min_free_gb: float = 1.0,
    storage_driver: str | None = None,
) -> tuple[list[Check], Platform | None]:
    """Every preflight verdict for one host, and the platform when it is supported
    (``storage_driver``: the daemon.json ``storage-driver`` asked for, if any)."""
    distro, plat = check_distro(facts, distro_like)
    uname = facts.get("uname") or {}
    checks = [
        distro,
        check_eol(plat, facts),
        check_kernel(uname),
        check_arch(uname),
        check_systemd(facts.get("init") or {}),
        check_overlay(facts),
        check_dtype(facts.get("dataroot") or {}, data_root),
        check_storage(facts.get("dataroot") or {}, data_root, storage_driver),
        check_br_netfilter(facts),
        check_cgroups(facts),
        check_userns(facts.get("sysctl") or {}),
        check_kmem(uname, facts.get("cmdline") or ""),
        check_selinux(facts.get("selinux") or {}, facts.get("packages") or set()),
        check_apparmor(facts.get("apparmor") or {}),
        check_space(facts.get("dataroot") or {}, min_free_gb),
    ]
    return checks, plat
