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


def parse(hc, image_volumes):
    # type: (dict, dict) -> list
    """MountPoint dicts in mount order; named volumes have "Name" and an empty "Source" until
    the service creates them, anonymous ones have Name None."""
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
        if parts[0].startswith("/"):
            out.append(_bind(posixpath.normpath(parts[0]), target, ro))
        else:
            out.append(_volume(parts[0], target, ro, "nocopy" in opts))
    for m in hc.get("Mounts") or []:
        kind = m.get("Type") or "volume"
        target = _clean_target(m.get("Target") or m.get("Destination") or "", "type %r" % kind)
        ro = bool(m.get("ReadOnly"))
        if kind == "bind":
            src = m.get("Source") or ""
            if not src.startswith("/"):
                raise InvalidParameter("invalid mount config for type \"bind\": invalid mount path: %r "
                                       "mount path must be absolute" % src)
            out.append(_bind(posixpath.normpath(src), target, ro))
        elif kind == "volume":
            nocopy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
            out.append(_volume(m.get("Source") or None, target, ro, nocopy))
        elif kind == "tmpfs":
            out.append({"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": not ro,
                        "Propagation": ""})
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
                    "options": ",".join(o for o in (m.get("Options") or "").split(",")
                                        if o not in ("ro", "rw"))})
    return out


def public(points):
    # type: (list) -> list
    """MountPoint dicts as the API shows them."""
    return [{k: v for k, v in m.items() if k not in ("NoCopy", "Options")} for m in points]
