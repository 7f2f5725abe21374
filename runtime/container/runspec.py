"""What the forkserver gets to start a container (the "run spec"), built from its record,
and the /etc files the container gets bind-mounted."""

import os
import time

from runtime.container import devices, mounts, spec
from runtime.container.state import Container  # noqa: F401
from runtime.timefmt import rfc3339


def write_etc(path, hostname, mode):
    # type: (str, str, str) -> None
    """hostname, hosts and resolv.conf in the container dir (bound over /etc/... at start)."""
    with open(os.path.join(path, "hostname"), "w") as f:
        f.write(hostname + "\n")
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    if mode == "host":
        try:
            with open("/etc/hosts") as f:
                hosts = f.read()
        except OSError:
            pass
    else:
        hosts += "127.0.0.1\t%s\n" % hostname
    with open(os.path.join(path, "hosts"), "w") as f:
        f.write(hosts)
    try:
        with open("/etc/resolv.conf") as f:
            resolv = f.read()
    except OSError:
        resolv = ""
    with open(os.path.join(path, "resolv.conf"), "w") as f:
        f.write(resolv)


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
    base, lower = short_lowerdir(c.cfg["ImageID"])
    return "lowerdir=" + lower + tail, base


def build(c, rootfs, short_lowerdir):
    # type: (Container, str, object) -> dict
    """The run spec for runtime/container/proc/monitor.py and init.py."""
    cfg, hc, conf = c.cfg, c.cfg["HostConfig"], c.cfg["Config"]
    if cfg.get("Driver") == "vfs":  # the container's own full copy, bound as its root
        opts, cwd, copy = None, None, c.file("rootfs")
    else:
        (opts, cwd), copy = overlay(c, short_lowerdir), None
    return {
        "id": c.id, "state_dir": c.path, "rootfs": rootfs, "overlay_opts": opts,
        "overlay_cwd": cwd, "vfs_root": copy, "ns_flags": spec.ns_flags(cfg["NetworkMode"]),
        "own_netns": cfg["NetworkMode"] != "host", "hostname": conf["Hostname"],
        "tty": bool(conf.get("Tty")), "open_stdin": bool(conf.get("OpenStdin")),
        "console_size": hc.get("ConsoleSize") if any(hc.get("ConsoleSize") or []) else None,
        "mounts": mounts.child_mounts(cfg["Mounts"]), "limits": hc,
        "shm_size": int(hc.get("ShmSize") or 0), "readonly_rootfs": bool(hc.get("ReadonlyRootfs")),
        "cgroup": cfg["Cgroup"], "devices": devices.run_spec(hc, cfg["Cgroup"].get("version") or 1),
        "log_path": c.file(c.id + "-json.log"),
        "started_at": rfc3339(time.time()),
        "process": {"args": [cfg["Path"]] + cfg["Args"], "env": conf["Env"], "cwd": conf.get("WorkingDir"),
                    "user": conf.get("User") or "", "caps": spec.capabilities(hc), "no_new_privs": False,
                    "group_add": hc.get("GroupAdd") or []},
    }
