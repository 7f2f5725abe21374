"""What the forkserver gets to start a container (the "run spec"), built from its record (the
/etc files it binds are written by the network side: runtime/services/networks.py)."""

import os
import time

from runtime.container import devices, hostconfig, logdriver, mounts, spec
from runtime.container.state import Container  # noqa: F401
from runtime.timefmt import rfc3339


REMAP_SYSCTLS = (("net.ipv4.ip_unprivileged_port_start", "0"), ("net.ipv4.ping_group_range", "0 2147483647"))


def overlay(c, short_lowerdir):
    # type: (Container, object) -> tuple
    """(mount options, dir the layer paths are relative to or None). Past the one-page option
    limit, short_lowerdir(image_id) -> (base dir, lowerdir relative to it) (the image store's).
    No `volatile` for AutoRemove containers: measured on 6.18, it made `run --rm` ~20 ms
    slower per start, not faster."""
    dirs = c.cfg["LayerDirs"]
    tail = ",upperdir=%s,workdir=%s" % (c.file("upper"), c.file("work"))
    lower = ":".join(reversed(dirs))
    if len("lowerdir=" + lower + tail) < 4000:
        return "lowerdir=" + lower + tail, None
    if (c.cfg.get("Userns") or {}).get("Layers") == "copy":  # a remap's copies, side by side
        names = ":".join(os.path.basename(d) for d in reversed(dirs))
        return "lowerdir=" + names + tail, os.path.dirname(dirs[0])
    base, lower = short_lowerdir(c.cfg["ImageID"])
    return "lowerdir=" + lower + tail, base


def namespaces(hc, pid_of):
    # type: (dict, object) -> tuple
    """(pid_ns, {"ipc": path, "uts": path}, own uts) for HostConfig PidMode/IpcMode/UTSMode:
    pid_ns None (a new one), "host" or the path to join; pid_of(id) -> the running PID 1 of
    another container (Conflict if it is not running)."""
    def ns_path(mode, kind):
        if mode == "host":
            return "/proc/%d/ns/%s" % (os.getpid(), kind)
        return "/proc/%d/ns/%s" % (pid_of(mode[10:]), kind)

    pid_mode = hc.get("PidMode") or ""
    pid_ns = None if not pid_mode else ("host" if pid_mode == "host" else ns_path(pid_mode, "pid"))
    join = {}
    for field, kind in (("IpcMode", "ipc"), ("UTSMode", "uts")):
        mode = hc.get(field) or ""
        if mode == "host" or mode.startswith("container:"):
            join[kind] = ns_path(mode, kind)
    return pid_ns, join, "uts" not in join


def fresh(run):
    # type: (dict) -> bool
    """Whether this spec cannot take a spare whose PID 1 is already in new namespaces with
    /proc, /sys and /dev staged: another PID namespace, slave propagation of the root, or
    masked/read-only paths of its own, or an SELinux mount label."""
    return (run["pid_ns"] is not None or run["root_slave"] or run["masked_paths"] is not None
            or run["readonly_paths"] is not None or run.get("userns") is not None
            or bool(run.get("mount_label")))  # a spare's /dev is staged unlabelled


def log_spec(c):
    # type: (Container) -> dict
    """The monitor's log writer: driver, path and rotation (runtime/container/proc/logfile.py)."""
    log = logdriver.settings(c.cfg["HostConfig"].get("LogConfig") or {})
    log["path"] = logdriver.path(c.path, c.id, log["driver"])
    return log


def build(c, rootfs, short_lowerdir, pid_of=None):
    # type: (Container, str, object, object) -> dict
    """The run spec for runtime/container/proc/monitor.py and init.py; pid_of(id): another
    running container's PID 1 (PidMode/IpcMode/UTSMode container:<id>)."""
    cfg, hc, conf = c.cfg, c.cfg["HostConfig"], c.cfg["Config"]
    if cfg.get("Driver") == "vfs":  # the container's own full copy, bound as its root
        opts, cwd, copy = None, None, c.file("rootfs")
    else:
        (opts, cwd), copy = overlay(c, short_lowerdir), None
    sysctls = dict(hc.get("Sysctls") or {})
    userns = cfg.get("Userns")
    if userns:  # run by a remapped root: runtime/container/proc/userns.py
        userns = {"uid_map": userns["UidMap"], "gid_map": userns["GidMap"], "idmap_layers": None}
        if not cfg["NetworkMode"].startswith("container:"):
            # its network namespace belongs to the host's root, so the remapped root's
            # CAP_NET_BIND_SERVICE does not count there: ports below 1024 are opened to all (as
            # dockerd does for every container), and ICMP echo sockets to every group
            for key, value in REMAP_SYSCTLS:
                sysctls.setdefault(key, value)
        if cfg["Userns"]["Layers"] == "idmap":
            opts, cwd = None, None
            userns.update(idmap_layers=list(reversed(cfg["LayerDirs"])), upper=c.file("upper"),
                          work=c.file("work"), idmap_base=c.file("idmap"))
    pid_ns, join, own_uts = namespaces(hc, pid_of)
    child_mounts = mounts.child_mounts(cfg["Mounts"])
    limits = hc
    throttles = {"_" + f: hostconfig.throttle_devices(hc.get(f), f) for f in hostconfig.BLKIO_FIELDS
                 if hc.get(f)}
    if throttles:
        limits = dict(hc, **throttles)
    return {
        "id": c.id, "state_dir": c.path, "rootfs": rootfs, "overlay_opts": opts,
        "mount_label": cfg.get("MountLabel") or "",
        "overlay_cwd": cwd, "vfs_root": copy, "userns": userns, "ns_flags": spec.ns_flags(cfg["NetworkMode"]),
        "own_netns": cfg["NetworkMode"] == "none", "hostname": conf["Hostname"],
        "join_netns": cfg["NetworkMode"] not in ("none", "host"),
        "domainname": conf.get("Domainname") or "", "own_uts": own_uts, "pid_ns": pid_ns, "ns_join": join,
        "tty": bool(conf.get("Tty")), "open_stdin": bool(conf.get("OpenStdin")),
        "console_size": hc.get("ConsoleSize") if any(hc.get("ConsoleSize") or []) else None,
        "mounts": child_mounts, "limits": limits,
        "root_slave": any(m.get("propagation") in ("slave", "rslave") for m in child_mounts),
        "shm_size": int(hc.get("ShmSize") or 0), "readonly_rootfs": bool(hc.get("ReadonlyRootfs")),
        "cgroup": cfg["Cgroup"], "devices": devices.run_spec(hc, cfg["Cgroup"].get("version") or 1),
        "log": log_spec(c),
        "started_at": rfc3339(time.time()),
        "sysctls": sysctls, "ulimits": hostconfig.ulimits(hc.get("Ulimits")),
        "oom_score_adj": int(hc.get("OomScoreAdj") or 0), "init": bool(hc.get("Init")),
        "cgroupns": hc.get("CgroupnsMode") == "private",
        "masked_paths": hc.get("MaskedPaths"), "readonly_paths": hc.get("ReadonlyPaths"),
        # carried out by the monitor; a start through the API begins the count again
        "restart_policy": hc.get("RestartPolicy") or {"Name": "no"}, "restart_count": 0,
        "process": {"args": [cfg["Path"]] + cfg["Args"], "env": conf["Env"], "cwd": conf.get("WorkingDir"),
                    "user": conf.get("User") or "", "caps": spec.capabilities(hc), "no_new_privs": False,
                    "group_add": hc.get("GroupAdd") or []},
    }
