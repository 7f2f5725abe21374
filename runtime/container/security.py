"""HostConfig.SecurityOpt, UsernsMode and the daemon's seccomp-profile / no-new-privileges ->
what a container's processes get: their seccomp program, no_new_privs and AppArmor profile,
and the SELinux label options (decided at create: runtime/container/selinux.py).
Values berth does not implement are refused with a line saying so, never ignored."""

from runtime import TYPE_CHECKING
from runtime.container import apparmor, seccomp, selinux
from runtime.container.proc import init
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Dict, List, Optional  # noqa: F401

_TRUE = ("", "true")


def read_profile_file(path):
    # type: (str) -> str
    """daemon.json seccomp-profile -> seccomp.BUILTIN, UNCONFINED or the file's JSON text,
    compiled once to check it (ProfileError or OSError say what is wrong)."""
    if path in ("", seccomp.BUILTIN):
        return seccomp.BUILTIN
    if path == seccomp.UNCONFINED:
        return seccomp.UNCONFINED
    with open(path) as f:
        text = f.read()
    seccomp.program_b64(text, ["CAP_" + c for c in init.DEFAULT_CAPS])
    return text


def parse_opts(hc):
    # type: (dict) -> Dict[str, object]
    """{"seccomp": profile or None (the daemon's), "no_new_privs": True/False/None, "apparmor":
    profile or None, "label": [SELinux label options]} from HostConfig.SecurityOpt;
    InvalidParameter for a value berth does not know or implement."""
    out = {"seccomp": None, "no_new_privs": None, "apparmor": None, "label": []}  # type: Dict[str, object]
    labels = []  # type: List[str]
    for opt in hc.get("SecurityOpt") or []:
        if not isinstance(opt, str):
            raise InvalidParameter("Invalid --security-opt: %r (give strings like seccomp=unconfined)"
                                   % (opt,))
        key, sep, value = opt.partition("=")
        if not sep and ":" in opt:  # the old key:value form
            key, sep, value = opt.partition(":")
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidParameter("Invalid --security-opt %r: no-new-privileges takes true or false"
                                       % opt)
            out["no_new_privs"] = value in _TRUE
        elif key == "seccomp" and value:
            if value not in (seccomp.BUILTIN, seccomp.UNCONFINED):
                try:
                    seccomp.parse_profile(value, "--security-opt seccomp")
                except seccomp.ProfileError as e:
                    raise InvalidParameter("%s (give seccomp=unconfined, or the profile's file)"
                                           % e) from None
            out["seccomp"] = value
        elif key == "apparmor" and value:
            out["apparmor"] = value
        elif key == "label" and value:
            labels.append(value)
        else:
            raise InvalidParameter("Invalid --security-opt: %r (berth knows seccomp=unconfined|PROFILE, "
                                   "apparmor=PROFILE, label=disable|type:T|level:L|user:U|role:R|filetype:T, "
                                   "no-new-privileges[=true|false])" % opt)
    selinux.check_options(labels)
    out["label"] = labels
    mode = hc.get("UsernsMode") or ""
    if mode not in ("", "host"):
        raise InvalidParameter("UsernsMode %r is not supported: leave it out (the daemon's userns-remap "
                               "applies) or give host (--userns=host)" % mode)
    return out


def process_options(hc, caps, daemon_profile=seccomp.BUILTIN, daemon_nnp=False, lsm=None, opts=None):
    # type: (dict, list, str, bool, Optional[AppArmorState], Optional[dict]) -> Dict[str, object]
    """{"seccomp": base64 program or None, "no_new_privs": bool, "apparmor": profile or None}
    for a process of the container with capability numbers caps, given the daemon's profile
    (read_profile_file), its no-new-privileges and the host's AppArmor (lsm); InvalidParameter
    for a profile that does not compile or cannot be applied."""
    opts = opts or parse_opts(hc)
    lsm = lsm or AppArmorState(False)
    profile_aa = apparmor.profile_for(opts["apparmor"], bool(hc.get("Privileged")), lsm.enabled)
    if profile_aa == apparmor.DEFAULT_PROFILE and lsm.problem:
        raise InvalidParameter("AppArmor is enabled but berth's %s profile is not loaded (%s): fix that and "
                               "restart berthd, or run with --security-opt apparmor=unconfined"
                               % (apparmor.DEFAULT_PROFILE, lsm.problem))
    nnp = opts["no_new_privs"]
    if nnp is None:
        nnp = bool(daemon_nnp)
    profile = opts["seccomp"] or daemon_profile
    if hc.get("Privileged") and not opts["seccomp"]:
        profile = seccomp.UNCONFINED  # as dockerd: privileged runs unfiltered unless told
    if not seccomp.kernel_supports() and profile != seccomp.UNCONFINED:
        if profile != seccomp.BUILTIN:  # as dockerd: the default quietly goes, a custom one is an error
            raise InvalidParameter("seccomp is not enabled in your kernel, cannot run a custom "
                                   "seccomp profile")
        profile = seccomp.UNCONFINED
    names = {n: "CAP_" + k for k, n in init.CAP_NUMBERS.items()}
    try:
        program = seccomp.program_b64(str(profile), [names[c] for c in caps if c in names])
    except seccomp.ProfileError as e:
        raise InvalidParameter(str(e)) from None
    return {"seccomp": program, "no_new_privs": nnp, "apparmor": profile_aa}


class AppArmorState(object):
    """The host's AppArmor as berthd found it at start: enabled, and why the default profile
    could not be loaded ("" when it is)."""

    def __init__(self, enabled, problem=""):
        # type: (bool, str) -> None
        self.enabled = enabled
        self.problem = problem

    @classmethod
    def at_start(cls, data_root):
        # type: (str) -> AppArmorState
        """Check the host and load berth-default when AppArmor is enabled and it is missing."""
        if not apparmor.host_enabled():
            return cls(False)
        try:
            apparmor.ensure_default(data_root)
        except RuntimeError as e:
            return cls(True, str(e))
        return cls(True)
