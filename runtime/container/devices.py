"""HostConfig.Devices, DeviceCgroupRules and Privileged -> the container's device rules (cgroup
v1 `devices.allow` lines; the same list compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program for
cgroup v2, runtime/container/proc/devices_bpf.py) and the device nodes PID 1 creates in the root.

Rules are Docker's: deny everything, then allow mknod of any node, the default set (null, zero,
full, random, urandom, tty, console, ptmx, pts, tun), one rule per --device with its
permissions, and --device-cgroup-rule lines. --privileged has no rules at all."""

import os
import re
import stat

from runtime import TYPE_CHECKING
from runtime.container.proc import devices_bpf
from runtime.container.proc.cgroups import DEVICE_RULES
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Dict, List, Optional  # noqa: F401

RULE = re.compile(r"^([acb]) (\*|[0-9]+):(\*|[0-9]+) ([rwm]{1,3})$")


def parse_rule(text):
    # type: (str) -> str
    """A `--device-cgroup-rule` line, checked and normalised; InvalidParameter otherwise."""
    m = RULE.match(str(text).strip())
    if not m or len(set(m.group(4))) != len(m.group(4)):
        raise InvalidParameter("invalid device cgroup rule %r: use TYPE MAJOR:MINOR ACCESS, e.g. "
                               "'c 1:3 rwm' (TYPE a, b or c; MAJOR and MINOR a number or *; ACCESS of "
                               "r, w, m)" % (text,))
    return m.group(0) if m.group(1) != "a" else "a *:* " + m.group(4)


def host_devices(hc):
    # type: (dict) -> List[Dict[str, object]]
    """HostConfig.Devices -> [{path, type, major, minor, mode, uid, gid, perms}] from the host's
    nodes; InvalidParameter for a path that is not a device or permissions not of r, w, m."""
    out = []
    for d in hc.get("Devices") or []:
        host = d.get("PathOnHost") or ""
        inside = d.get("PathInContainer") or host
        perms = d.get("CgroupPermissions") or "rwm"
        if not re.match(r"^[rwm]{1,3}$", perms):
            raise InvalidParameter("invalid device permissions %r for %s: use a combination of r, w, m"
                                   % (perms, host))
        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidParameter("error gathering device information while adding custom device "
                                   "%r: %s" % (host, e.strerror)) from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise InvalidParameter("%s is not a device node (give a character or block device, "
                                   "e.g. --device /dev/fuse)" % host)
        if not inside.startswith("/"):
            raise InvalidParameter("device path in the container %r must be absolute" % inside)
        out.append({"path": inside, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                    "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                    "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "perms": perms})
    return out


def rules(hc):
    # type: (dict) -> Optional[List[str]]
    """The allow list after "deny all", or None for no restriction (Privileged)."""
    if hc.get("Privileged"):
        return None
    out = list(DEVICE_RULES)
    for d in host_devices(hc):
        out.append("%s %d:%d %s" % (d["type"], d["major"], d["minor"], d["perms"]))
    out.extend(parse_rule(r) for r in hc.get("DeviceCgroupRules") or [])
    return out


def run_spec(hc, cgroup_version):
    # type: (dict, int) -> Dict[str, object]
    """The run spec's "devices": {"rules": [...] or None, "bpf": base64 program for cgroup v2 or
    None, "nodes": the --device nodes to create}."""
    allowed = rules(hc)
    program = None
    if allowed is not None and cgroup_version == 2:
        program = devices_bpf.program_b64(tuple(allowed))
    return {"rules": allowed, "bpf": program, "nodes": host_devices(hc)}
