"""A container's mounts from HostConfig.Binds, HostConfig.Mounts and the image's VOLUMEs:
each becomes Docker's MountPoint (for inspect/list) plus what the child mounts
({"type", "source", "target", "ro", "copy_up"})."""

import os
import posixpath

from runtime.errors import InvalidParameter


def _clean_target(target, what):
    # type: (str, str) -> str
    if not target or not target.startswith("/"):
        raise InvalidParameter("invalid mount config for %s: mount path must be absolute: %r"
                               % (what, target))
    target = posixpath.normpath(target)
    if target == "/":
        raise InvalidParameter("invalid mount config for %s: the destination cannot be /" % what)
    return target


def _bind(source, target, ro, propagation="rprivate"):
    # type: (str, str, bool, str) -> dict
    if not os.path.exists(source):
        raise InvalidParameter("invalid mount config for type \"bind\": bind source path does not exist: %s"
                               % source)
    return {"Type": "bind", "Source": source, "Destination": target, "Mode": "ro" if ro else "",
            "RW": not ro, "Propagation": propagation}


def _volume(name, target, ro, nocopy):
    # type: (str, str, bool, bool) -> dict
    return {"Type": "volume", "Name": name, "Source": "", "Destination": target, "Driver": "local",
            "Mode": "", "RW": not ro, "Propagation": "", "NoCopy": nocopy}


_PROPAGATIONS = ("rprivate", "private", "rslave", "slave", "rshared", "shared")


def propagation(source, mode):
    # type: (str, str) -> str
    """A bind's propagation, checked: slave forms need the source on a shared or slave host
    mount (as dockerd requires); the shared forms are refused (a container's mounts never
    propagate back to the host)."""
    mode = mode or "rprivate"
    if mode not in _PROPAGATIONS:
        raise InvalidParameter("invalid propagation mode: %s (use %s)" % (mode, ", ".join(_PROPAGATIONS)))
    if mode in ("shared", "rshared"):
        raise InvalidParameter("bind propagation %s is not supported: berthd never propagates a "
                               "container's mounts back to the host (use rslave or slave)" % mode)
    if mode in ("slave", "rslave"):
        mnt, tags = _host_mount_of(source)
        if not any(t.startswith(("shared:", "master:")) for t in tags):
            raise InvalidParameter("path %s is mounted on %s but it is not a shared or slave mount"
                                   % (source, mnt))
    return mode


def _host_mount_of(path):
    # type: (str) -> tuple
    """(mount point, optional tags) of the host mount holding path (/proc/self/mountinfo)."""
    best, tags = "/", []  # type: (str, list)
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre = line.partition(" - ")[0].split()
            mnt = pre[4].replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, tags = mnt, pre[6:]
    return best, tags


def _volumes_from(points, mode, seen):
    # type: (list, str, set) -> list
    """Another container's binds and volumes (VolumesFrom), RW as theirs unless mode says."""
    out = []
    for m in points:
        if m["Type"] not in ("bind", "volume") or m["Destination"] in seen:
            continue
        m = dict(m)
        if mode:
            m.update(RW=mode == "rw", Mode=mode)
        out.append(m)
    return out


def _tmpfs_options(opts):
    # type: (dict) -> str
    """Mounts[].TmpfsOptions -> tmpfs mount options."""
    out = []
    if opts.get("SizeBytes"):
        out.append("size=%d" % int(opts["SizeBytes"]))
    mode = opts.get("Mode")
    out.append("mode=%o" % (int(mode) & 0o7777) if mode else "mode=1777")
    return ",".join(out)


def parse(hc, image_volumes, volumes_from=()):
    # type: (dict, dict, object) -> list
    """MountPoint dicts in mount order; named volumes have "Name" and an empty "Source" until
    the service creates them, anonymous ones have Name None. volumes_from: [(another
    container's MountPoints, "ro"|"rw"|"")] (HostConfig.VolumesFrom)."""
    out = []  # type: list
    for spec in hc.get("Binds") or []:
        parts = spec.split(":")
        if len(parts) < 2 or len(parts) > 3 or not parts[0]:
            raise InvalidParameter("invalid volume specification: %r "
                                   "(use /host/path:/path[:ro] or name:/path)" % spec)
        opts = set(parts[2].split(",")) if len(parts) == 3 else set()
        bad = opts - {"ro", "rw", "z", "Z", "nocopy", "rprivate", "private", "rslave", "slave", "rshared",
                      "shared"}
        if bad:
            raise InvalidParameter("invalid volume specification: %r: unknown option %s"
                                   % (spec, ",".join(bad)))
        target = _clean_target(parts[1], spec)
        ro = "ro" in opts
        if {"z", "Z"} <= opts:
            raise InvalidParameter("invalid volume specification: %r: give z (shared) or Z (private), "
                                   "not both" % spec)
        if parts[0].startswith("/"):
            source = posixpath.normpath(parts[0])
            props = [o for o in opts if o in _PROPAGATIONS]
            if len(props) > 1:
                raise InvalidParameter("invalid volume specification: %r: more than one propagation" % spec)
            out.append(_bind(source, target, ro, propagation(source, props[0] if props else "")))
        else:
            out.append(_volume(parts[0], target, ro, "nocopy" in opts))
        relabel = "Z" if "Z" in opts else ("z" if "z" in opts else "")
        if relabel:  # SELinux: the source relabelled at each start (runtime/container/selinux.py)
            out[-1]["Relabel"] = relabel
    for m in hc.get("Mounts") or []:
        kind = m.get("Type") or "volume"
        target = _clean_target(m.get("Target") or m.get("Destination") or "", "type %r" % kind)
        ro = bool(m.get("ReadOnly"))
        if kind == "bind":
            src = m.get("Source") or ""
            if not src.startswith("/"):
                raise InvalidParameter("invalid mount config for type \"bind\": invalid mount path: %r "
                                       "mount path must be absolute" % src)
            source = posixpath.normpath(src)
            bo = m.get("BindOptions") or {}
            if bo.get("CreateMountpoint") and not os.path.exists(source):
                os.makedirs(source, 0o755)
            if bo.get("ReadOnlyForceRecursive"):
                raise InvalidParameter("BindOptions.ReadOnlyForceRecursive is not supported: berthd makes "
                                       "read-only binds recursively where the kernel allows (the default)")
            point = _bind(source, target, ro, propagation(source, bo.get("Propagation") or ""))
            if bo.get("NonRecursive"):
                point["NonRecursive"] = True
            if bo.get("ReadOnlyNonRecursive"):
                point["ReadOnlyNonRecursive"] = True
            out.append(point)
        elif kind == "volume":
            nocopy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
            out.append(_volume(m.get("Source") or None, target, ro, nocopy))
        elif kind == "tmpfs":
            out.append({"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": not ro,
                        "Propagation": "", "Options": _tmpfs_options(m.get("TmpfsOptions") or {})})
        else:
            raise InvalidParameter("mount type %r is not supported: use bind, volume or tmpfs" % kind)
    for target, opts in sorted((hc.get("Tmpfs") or {}).items()):
        out.append({"Type": "tmpfs", "Source": "", "Destination": _clean_target(target, "tmpfs"), "Mode": "",
                    "RW": "ro" not in (opts or "").split(","), "Propagation": "", "Options": opts or ""})
    seen = set()
    for m in out:
        if m["Destination"] in seen:
            raise InvalidParameter("Duplicate mount point: %s" % m["Destination"])
        seen.add(m["Destination"])
    for points, mode in volumes_from:
        taken = _volumes_from(points, mode, seen)
        out.extend(taken)
        seen.update(m["Destination"] for m in taken)
    for path in sorted(image_volumes or {}):
        target = posixpath.normpath(path)
        if target not in seen and target != "/":
            out.append(_volume(None, target, False, False))
            seen.add(target)
    return out


def child_mounts(points):
    # type: (list) -> list
    """What rootfs.mount_user needs, parents before children."""
    out = []
    for m in sorted(points, key=lambda m: m["Destination"].count("/")):
        out.append({"type": m["Type"], "source": m["Source"], "target": m["Destination"],
                    "ro": not m["RW"], "copy_up": m["Type"] == "volume" and not m.get("NoCopy"),
                    "propagation": m.get("Propagation") if m["Type"] == "bind" else "",
                    "non_recursive": bool(m.get("NonRecursive")),
                    "ro_non_recursive": bool(m.get("ReadOnlyNonRecursive")),
                    "options": ",".join(o for o in (m.get("Options") or "").split(",")
                                        if o not in ("ro", "rw"))})
    return out


def public(points):
    # type: (list) -> list
    """MountPoint dicts as the API shows them."""
    private = ("NoCopy", "Options", "NonRecursive", "ReadOnlyNonRecursive", "Relabel")
    return [{k: v for k, v in m.items() if k not in private} for m in points]
