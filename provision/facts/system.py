"""The concrete facts provision reads: OS, kernel, init, kernel features, storage, files,
groups, users and packages. Parsers are pure functions (unit-tested without a host)."""

from __future__ import annotations

import base64
import functools
import shlex

from provision.facts.base import Fact
from provision.render import render

# what templates/module-state.sh.j2 says of a module
MODULE_ACTIVE = ("loaded", "builtin")
MODULE_USABLE = (*MODULE_ACTIVE, "loadable")

# Python fallback for XFS ftype when xfs_info is missing: XFS_IOC_FSGEOMETRY_V1 on any path of
# the filesystem needs no block device access (works inside containers too).
_XFS_PY = (
    "import fcntl,os,struct,sys\n"
    "b=bytearray(112)\n"
    "fd=os.open(sys.argv[1],os.O_RDONLY)\n"
    "fcntl.ioctl(fd,(2<<30)|(112<<16)|(0x58<<8)|100,b)\n"
    "print('ftype=%d' % (1 if struct.unpack_from('=I',bytes(b),92)[0] & 0x10000 else 0))\n"
)


def parse_kv(lines: list[str]) -> dict[str, str]:
    """``KEY=value`` lines (os-release style; quotes stripped)."""
    out = {}
    for line in lines:
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            out[k.strip()] = v
    return out


def parse_words(lines: list[str]) -> dict[str, str]:
    """``name value`` lines into a dict."""
    out = {}
    for line in lines:
        parts = line.split(None, 1)
        if parts:
            out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def parse_mountinfo(lines: list[str]) -> list[tuple[str, str, str]]:
    """``/proc/self/mountinfo`` into ``[(mount point, fstype, source)]``."""
    mounts = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) >= 5 and len(rfields) >= 2:
            mp = fields[4].replace("\\040", " ")
            mounts.append((mp, rfields[0], rfields[1]))
    return mounts


def parse_dataroot(lines: list[str]) -> dict[str, str]:
    """Existing ancestor, its filesystem type and mount point, free space and XFS ftype."""
    return parse_words(lines)


def parse_files(lines: list[str]) -> dict[str, dict | None]:
    """``@file PATH`` blocks: ``absent`` or ``MODE UID GID`` followed by base64 content."""
    files: dict[str, dict | None] = {}
    path = None
    buf: list[str] = []
    meta: str | None = None

    def flush() -> None:
        if path is None:
            return
        if meta == "absent" or meta is None:
            files[path] = None
        else:
            mode, uid, gid = meta.split()
            files[path] = {
                "mode": int(mode, 8),
                "uid": int(uid),
                "gid": int(gid),
                "content": base64.b64decode("".join(buf)),
            }

    for line in lines:
        if line.startswith("@file "):
            flush()
            path, meta, buf = line[6:], None, []
        elif meta is None:
            meta = line.strip()
        else:
            buf.append(line.strip())
    flush()
    return files


def parse_group(lines: list[str]) -> dict | None:
    """``getent group`` output: ``{"gid": int, "members": [...]}`` or None."""
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 4:
            return {"gid": int(parts[2]), "members": [m for m in parts[3].split(",") if m]}
    return None


def parse_users(lines: list[str]) -> dict[str, list[str] | None]:
    """``user: groups...`` lines (``user: -`` when the user does not exist)."""
    out: dict[str, list[str] | None] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        rest = rest.strip()
        out[name.strip()] = None if rest == "-" else rest.split()
    return out


def module_state(facts: dict, name: str) -> str:
    """loaded, builtin, loadable or missing (templates/module-state.sh.j2): the one answer the
    preflight checks and the kernel step both act on."""
    return facts.get("modules", {}).get(name, "missing")


def parse_packages(lines: list[str]) -> set[str]:
    """Names of installed packages, from ``rpm -q`` or ``dpkg-query`` lines ``name installed``."""
    return {ln.split()[0] for ln in lines if ln.strip().endswith(" installed")}


def file_command(paths: list[str]) -> str:
    """sh printing an ``@file PATH`` block per path (see :func:`parse_files`)."""
    q = shlex.quote
    return (
        "; ".join(
            f"echo '@file {p}'; if [ -f {q(p)} ]; then stat -c '%a %u %g' {q(p)}; base64 < {q(p)}; "
            f"else echo absent; fi"
            for p in paths
        )
        or "true"
    )


def systemd_running(facts: dict) -> bool:
    """True when systemd is PID 1 and booted the host (else engines run directly)."""
    init = facts.get("init") or {}
    return init.get("pid1") == "systemd" and init.get("booted") == "yes"


def sysctl_path(key: str) -> str:
    """/proc/sys/net/ipv4/ip_forward for net.ipv4.ip_forward."""
    return "/proc/sys/" + key.replace(".", "/")


def parse_sysctls(keys: list[str], lines: list[str]) -> dict[str, str]:
    """``grep -H . PATHS`` lines (``PATH:VALUE``) into {key: value} for the keys asked for."""
    by_path = {sysctl_path(k): k for k in keys}
    out = {}
    for line in lines:
        path, sep, value = line.partition(":")
        if sep and path in by_path:
            out[by_path[path]] = value.strip()
    return out


def read_file(path: str) -> str:
    """sh printing a small file with the shell's own ``read`` (``cat`` costs a process: a
    rerun's facts are most of what it runs on the host)."""
    return f'while IFS= read -r l || [ -n "$l" ]; do printf \'%s\\n\' "$l"; done < {shlex.quote(path)}'


def system_facts(
    data_root: str,
    files: list[str],
    users: list[str],
    packages: list[str],
    sysctls: list[str],
    modules: list[str],
    group: str = "docker",
) -> list[Fact]:
    """Every fact for one host; the inputs are what the plan will compare against."""
    q = shlex.quote
    file_cmd = file_command(files)
    user_cmd = (
        "; ".join(
            f"if g=$(id -Gn {q(u)} 2>/dev/null); then echo \"{u}: $g\"; else echo '{u}: -'; fi" for u in users
        )
        or "true"
    )
    # one grep for all of them ("PATH:VALUE" per file that exists), not the shell's `read`: dash
    # reads a byte at a time, and a /proc/sys file answers a read at an offset past 0 with EOF,
    # so `read` got "8" of 8192 (every rerun then "changed" the ARP-table sysctls back)
    sysctl_cmd = (
        "grep -H . " + " ".join(q(sysctl_path(k)) for k in sysctls) + " 2>/dev/null; true" if sysctls else ""
    )
    pkgs = " ".join(q(p) for p in packages)
    pkg_cmd = (
        "true"
        if not packages
        # one rpm call for all names; skipped where dpkg is the package manager (faster reruns)
        else "if command -v rpm >/dev/null && "
        "{ [ -e /etc/redhat-release ] || [ ! -e /etc/debian_version ]; }; "
        f"then rpm -q --qf '%{{NAME}} installed\\n' {pkgs} | grep ' installed$'; fi; "
        f"if command -v dpkg-query >/dev/null; then "
        f"dpkg-query -W -f='${{Package}} ${{db:Status-Status}}\\n' {pkgs}; fi"
    )
    dr = q(data_root)
    dataroot_cmd = (
        # the nearest existing ancestor, found by the shell itself (no dirname per level)
        f'p={dr}; while [ ! -e "$p" ]; do case $p in */*) p=${{p%/*}}; p=${{p:-/}};; *) p=.;; esac; done; '
        'echo "path $p"; '
        't=$(stat -f -c %T "$p"); echo "fstype $t"; '
        'df -Pk "$p" | { read -r _; read -r _ _ _ a _ m; echo "avail_kb $a"; echo "mountpoint $m"; }; '
        'if [ "$t" = xfs ]; then '
        "  r=$(xfs_info \"$p\" 2>/dev/null | grep -o 'ftype=[01]' | head -n 1); "
        f'  [ -n "$r" ] || r=$(python3 -c {q(_XFS_PY)} "$p" 2>/dev/null || python -c {q(_XFS_PY)} "$p"); '
        '  echo "xfs $r"; fi'
    )
    return [
        Fact("os_release", read_file("/etc/os-release"), parse_kv, {}),
        Fact("uname", 'echo "release $(uname -r)"; echo "machine $(uname -m)"', parse_words, {}),
        Fact(
            "init",
            'c=; read -r c < /proc/1/comm; echo "pid1 $c"; '
            "[ -d /run/systemd/system ] && echo 'booted yes' && "
            'command -v systemctl >/dev/null && echo "state $(systemctl is-system-running 2>/dev/null)"',
            parse_words,
            {},
        ),
        Fact(
            "filesystems",
            read_file("/proc/filesystems"),
            lambda ls: {ln.split()[-1] for ln in ls if ln.strip()},
            set(),
        ),
        Fact(
            "modules",
            render("module-state.sh.j2", {"modules": modules}).decode(),
            parse_words,
            {},
        ),
        Fact("mounts", "cat /proc/self/mountinfo", parse_mountinfo, []),
        Fact(
            "cgroups",
            read_file("/proc/cgroups"),
            lambda ls: [ln for ln in ls if ln and not ln.startswith("#")],
            [],
        ),
        Fact("sysctl", sysctl_cmd or "true", functools.partial(parse_sysctls, sysctls), {}),
        Fact("cmdline", read_file("/proc/cmdline"), lambda ls: " ".join(ls), ""),
        Fact(
            "selinux",
            '[ -r /sys/fs/selinux/enforce ] && echo "enforce $(cat /sys/fs/selinux/enforce)"; '
            "[ -r /etc/selinux/config ] && sed -n 's/^SELINUX=/config /p' /etc/selinux/config",
            parse_words,
            {},
        ),
        Fact(
            "apparmor",
            "[ -r /sys/module/apparmor/parameters/enabled ] && "
            'echo "enabled $(cat /sys/module/apparmor/parameters/enabled)"; '
            "{ command -v apparmor_parser >/dev/null || [ -x /sbin/apparmor_parser ] || "
            "[ -x /usr/sbin/apparmor_parser ]; } && echo parser yes",
            parse_words,
            {},
        ),
        Fact("dataroot", dataroot_cmd, parse_dataroot, {}),
        Fact("files", file_cmd, parse_files, {}),
        Fact("group", f"getent group {q(group)}", parse_group, None),
        Fact("users", user_cmd, parse_users, {}),
        Fact("packages", pkg_cmd, parse_packages, set()),
        Fact(
            "repos",
            "[ -d /etc/yum.repos.d ] && "
            "grep -l '^mirrorlist=.*mirrorlist.centos.org' /etc/yum.repos.d/*.repo",
            lambda ls: ls,
            [],
        ),
        Fact(
            "tools",
            "for t in yum dnf apt-get rpm dpkg systemctl sysctl modprobe groupadd usermod; do "
            'command -v $t >/dev/null && echo "$t yes"; done',
            parse_words,
            {},
        ),
    ]
