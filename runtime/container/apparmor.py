"""AppArmor: berth's default profile for containers (`berth-default`, the rules of dockerd's
docker-default, written here), loaded with apparmor_parser when berthd starts on a host where
AppArmor is enabled and the profile is missing, and the profile each container's processes get
(`--security-opt apparmor=NAME|unconfined`). PID 1 and exec'd processes ask for it on their
execve (runtime/container/proc/init.py). On a host without AppArmor, or without
apparmor_parser to load profiles with (as dockerd decides), nothing is applied and a named
profile is refused."""

import os
import shutil
import subprocess

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Optional  # noqa: F401

DEFAULT_PROFILE = "berth-default"
UNCONFINED = "unconfined"
_ENABLED = "/sys/module/apparmor/parameters/enabled"
_SECURITYFS = "/sys/kernel/security/apparmor"
_PARSERS = ("/sbin/apparmor_parser", "/usr/sbin/apparmor_parser")

# (rule, why): the policy of dockerd's docker-default profile, in the order it applies them
_RULES = (
    ("network,", "any socket"),
    ("capability,", "the capabilities the container's bounding set leaves"),
    ("file,", "files, as the namespaces and mounts allow"),
    ("umount,", "unmount within the container"),
    ("signal (receive) peer=unconfined,", "signals from the host (berthd, the monitor)"),
    ("signal (send,receive) peer={name},", "signals between its own processes"),
    ("deny @{PROC}/* w,", "no write to files directly under /proc"),
    ("deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,",
     "nor below /proc entries that are not processes (/proc/sys aside)"),
    ("deny @{PROC}/sys/[^k]** w,", "no write to /proc/sys outside kernel/"),
    ("deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,", "and in kernel/ only to shm*"),
    ("deny @{PROC}/sysrq-trigger rwklx,", "no magic SysRq"),
    ("deny @{PROC}/kcore rwklx,", "no kernel memory"),
    ("deny mount,", "no mount"),
    ("deny /sys/[^f]*/** wklx,", "no write to /sys but /sys/fs/cgroup"),
    ("deny /sys/f[^s]*/** wklx,", ""),
    ("deny /sys/fs/[^c]*/** wklx,", ""),
    ("deny /sys/fs/c[^g]*/** wklx,", ""),
    ("deny /sys/fs/cg[^r]*/** wklx,", ""),
    ("deny /sys/firmware/** rwklx,", "no firmware tables"),
    ("deny /sys/devices/virtual/powercap/** rwklx,", "no power meters (energy side channels)"),
    ("deny /sys/kernel/security/** rwklx,", "no LSM state"),
    ("ptrace (trace,read,tracedby,readby) peer={name},", "ptrace between its own processes only"),
)


def profile_text(name=DEFAULT_PROFILE):
    # type: (str) -> str
    """The default profile in AppArmor's policy language."""
    lines = ["# berth's default AppArmor profile for containers (written by berthd)",
             "#include <tunables/global>", "",
             "profile %s flags=(attach_disconnected,mediate_deleted) {" % name,
             "  #include <abstractions/base>", ""]
    for rule, why in _RULES:
        if why:
            lines.append("  # " + why)
        lines.append("  " + rule.replace("{name}", name))
    lines.append("}")
    return "\n".join(lines) + "\n"


def parser():
    # type: () -> Optional[str]
    """The path of apparmor_parser (on PATH, or in /sbin or /usr/sbin), or None."""
    found = shutil.which("apparmor_parser")
    if found:
        return found
    for path in _PARSERS:
        if os.access(path, os.X_OK):
            return path
    return None


def host_enabled():
    # type: () -> bool
    """Whether berth confines containers with AppArmor, decided as dockerd decides it: the
    kernel runs AppArmor (the module parameter and securityfs) and apparmor_parser is
    installed. A kernel with AppArmor on and no parser (a Debian cloud image without the
    apparmor package) can load no profile: containers run unconfined there, as under dockerd."""
    try:
        with open(_ENABLED) as f:
            if f.read(1) != "Y" or not os.path.isdir(_SECURITYFS):
                return False
    except OSError:
        return False
    return parser() is not None


def loaded_profiles():
    # type: () -> set
    """The names of the profiles loaded in the kernel."""
    try:
        with open(os.path.join(_SECURITYFS, "profiles")) as f:
            return {line.rsplit(" (", 1)[0] for line in f if line.strip()}
    except OSError:
        return set()


def ensure_default(data_root):
    # type: (str) -> None
    """Load berth-default with apparmor_parser unless the kernel has it already; RuntimeError
    with the parser's words when it cannot. The profile file stays in data-root/apparmor/."""
    if DEFAULT_PROFILE in loaded_profiles():
        return
    d = os.path.join(data_root, "apparmor")
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, DEFAULT_PROFILE)
    with open(path, "w") as f:
        f.write(profile_text())
    try:
        proc = subprocess.run([parser() or "apparmor_parser", "-Kr", path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    except OSError as e:
        raise RuntimeError("AppArmor is enabled but apparmor_parser cannot run (%s): install the apparmor "
                           "package to load the %s profile" % (e.strerror, DEFAULT_PROFILE)) from None
    if proc.returncode != 0:
        raise RuntimeError("apparmor_parser could not load the %s profile from %s: %s" % (
            DEFAULT_PROFILE, path, proc.stdout.decode("utf-8", "replace").strip()))


def profile_for(value, privileged, enabled):
    # type: (object, bool, bool) -> object
    """The profile a container's processes get: value is --security-opt apparmor=VALUE (None
    when not given); None means unconfined. InvalidParameter for a profile this host cannot
    apply."""
    if value == UNCONFINED:
        return None
    if value is None:
        return DEFAULT_PROFILE if enabled and not privileged else None
    if not enabled:
        raise InvalidParameter("--security-opt apparmor=%s: AppArmor is not enabled on this host (%s is "
                               "not Y, or apparmor_parser is not installed): leave it out or give "
                               "apparmor=unconfined" % (value, _ENABLED))
    if value not in loaded_profiles():
        raise InvalidParameter("--security-opt apparmor=%s: no such AppArmor profile is loaded (load it "
                               "with apparmor_parser -r FILE)" % value)
    return value
