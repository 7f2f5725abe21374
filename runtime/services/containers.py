"""ContainerBackend implementation: see runtime/api/backend/containers.py for the contract.

The lifecycle lives here; the pieces are in runtime/container: spec (config -> process), mounts,
state (files + /proc), views (JSON), logs, execs, the spawner (the forkserver's client), and in
runtime/container/proc what runs in the forkserver, monitors and PID 1.
"""

import binascii
import collections
import logging
import os
import shutil
import signal as _signal
import socket
import threading
import time

from runtime.api.backend.containers import ContainerBackend
from runtime.container import (devices, healthcheck, hostconfig, limits, listfilter, logdriver, logs,
                               mounts, names, remap, runspec, security, selinux, spec, stats, top,
                               views)
from runtime.container import update as container_update
from runtime.container.proc import cgroups, nursery, restart
from runtime.container import monitor_client as client
from runtime.container.execs import Execs
from runtime.container.spawner import Spawner
from runtime.container.index import ContainerIndex  # noqa: F401 (type comments)
from runtime.container.kicker import Kicker
from runtime.container.state import Container
from runtime.container.proc.wire import recv_exact
from runtime.events import EventLog
from runtime.services import health, watch
from runtime.store import vfs
from runtime import TYPE_CHECKING, filterargs
from runtime.timefmt import ZERO_TIME, parse_rfc3339, rfc3339
from runtime.workers import Workers
from runtime.services import commit, containerfs
from runtime.errors import BerthError, Conflict, InvalidParameter, NotFound, NotModified, SystemFailure

if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional  # noqa: F401


log = logging.getLogger("berthd")
AUTO_REMOVED_KEEP = 60.0  # seconds a wait still finds a removed AutoRemove container's exit code


def _image_config(store, image_id):
    # type: (object, str) -> dict
    full = store.image_config(image_id) or {}
    inner = full.get("config")
    return inner if isinstance(inner, dict) else full


def _check_name_free(name, taken):
    # type: (str, Mapping[str, str]) -> None
    if name and name in taken:
        raise Conflict('Conflict. The container name "/%s" is already in use by container "%s". '
                       'You have to remove (or rename) that container to be able to reuse that name.'
                       % (name, taken[name]))


class ContainerService(ContainerBackend):
    """The containers in `containers` (a ContainerIndex) made from images in `store` (an
    ImageStore), with named volumes from `volumes` (LocalVolumes) and their networks through
    `networking` (the engine's NetworkFront); `config` is daemon.json's (exec-opts, cgroup-parent)."""

    def __init__(self, config, store, volumes, containers, networking, events=None, userns=None,
                 data_root=None):
        # type: (dict, object, object, ContainerIndex, object, Optional[EventLog], Optional[remap.Remap], str) -> None
        self.store = store
        self.networking = networking  # runtime.services.networks.NetworkFront
        self.volumes = volumes
        self.containers = containers
        opts = " ".join(config.get("exec-opts") or [])
        if "native.cgroupdriver=systemd" in opts:
            raise InvalidParameter("the systemd cgroup driver is not supported yet: use "
                                   "native.cgroupdriver=cgroupfs in exec-opts")
        self.cgroup_parent = config.get("cgroup-parent") or "/berth"
        self.config = config
        self.seccomp_profile = security.read_profile_file(config.get("seccomp-profile") or "")
        self.data_root = data_root or os.path.dirname(containers.root)
        self.lsm = security.AppArmorState.at_start(self.data_root)  # loads berth-default if need be
        if self.lsm.problem:
            log.error("%s", self.lsm.problem)
        # daemon.json selinux-enabled: None when containers get no SELinux labels (and why)
        self.selinux, self.selinux_problem = selinux.Labeler.at_start(bool(config.get("selinux-enabled")))
        if self.selinux_problem:
            log.warning("%s", self.selinux_problem)
        self.cgroup_version = cgroups.detect_version()
        self.host_env = hostconfig.environment(self.cgroup_version, cgroups.controllers(self.cgroup_version))
        # (v1) where spare PID 1s wait in cgroups of their own (proc/nursery.py)
        self.spare_parent = self.cgroup_parent if self.cgroup_version == 1 else None
        if self.spare_parent:
            nursery.sweep(self.spare_parent)  # what killed spares left
        self.spawner = Spawner(containers.rootfs_mount, self.spare_parent)
        self.kicker = Kicker(lambda: self.spawner.pid or os.getpid())
        self.events = events if events is not None else EventLog()
        self.remap = userns  # daemon.json userns-remap, resolved (runtime/container/remap.py)
        self.idmap_problem = ""  # why the layers of remapped containers are copies, not idmapped mounts
        if userns is not None and self.store.driver != "vfs":
            forced = os.environ.get("BERTH_USERNS_IDMAP") == "0"  # (tests: the copies)
            self.idmap_problem = "BERTH_USERNS_IDMAP=0" if forced else remap.probe_idmap(self.data_root)
        self.watcher = watch.Watcher(self.events, self._after_exit, self._restart_events)
        # `run --rm` removals, handed over at the die: no thread made on the start path
        self.removals = Workers(2, "auto-remove")
        self.execs = Execs(containers, self.spawner, self._security, self.events)
        # AutoRemove containers removed lately: id -> (name, exit code, when), so that a wait
        # that arrives just after the removal still gets the code (docker-py's run(auto_remove)
        # waits after its log stream ends, when berthd may have removed the container already)
        self.auto_removed = collections.OrderedDict()  # type: collections.OrderedDict
        self.auto_removed_lock = threading.Lock()
        for c in self.containers.all():  # AutoRemove containers that ended while no engine ran
            if self.selinux is not None:
                self.selinux.reserve(c.cfg.get("ProcessLabel") or "")
            if c.cfg["HostConfig"].get("AutoRemove") and c.started().get("Pid"):
                threading.Thread(target=self._auto_remove, args=(c,), daemon=True).start()
            elif c.state()["Running"]:
                self.watcher.add(c)
                health.check(self, c, fresh=False)

    def close(self):
        # type: () -> None
        """Stop the forkserver (containers and their monitors keep running) and finish deleting
        the directories of removed containers."""
        for c in self.containers.all():
            checker = getattr(c, "health", None)
            if checker is not None:
                checker.stop.set()
        self.watcher.close()
        self.removals.close()  # what exited before the close is removed
        self.kicker.close()
        self.spawner.close()
        self.containers.flush(30)

    def container_upper_dir(self, name):
        # type: (str) -> str
        """The container's writable layer (what `commit` turns into a layer): the overlay upper
        dir, or with the vfs driver the container's whole root."""
        c = self.containers.get(name)
        return c.file("rootfs" if c.cfg.get("Driver") == "vfs" else "upper")

    def container_id_maps(self, name):
        # type: (str) -> Optional[dict]
        """{"UidMap", "GidMap"} of a container run with remapped ids (userns-remap), else None."""
        return self.containers.get(name).cfg.get("Userns")

    # ---------------------------------------------------------------- create

    def container_create(self, config, name=None):
        config = dict(config or {})
        hc = dict(config.pop("HostConfig", None) or {})
        warnings = []  # type: list
        if name:
            name = names.validate(name)
        ref = config.get("Image")
        if not ref:
            raise InvalidParameter("no image given: say which image to create the container from")
        image_id = self.store.resolve(ref)
        ic = _image_config(self.store, image_id)
        args = spec.command(config, ic)
        networking = config.pop("NetworkingConfig", None) or {}
        mode = self.networking.check_create(hc, config, networking)
        warnings.extend(cgroups.unsupported(hc, self.cgroup_version))
        warnings.extend(hostconfig.check(config, hc, self.host_env))
        self._check_applied_fields(hc, mode)
        hc.setdefault("NetworkMode", "default")
        try:
            hc["RestartPolicy"] = restart.validate(hc.get("RestartPolicy"), bool(hc.get("AutoRemove")))
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
        try:
            hc["LogConfig"] = logdriver.resolve(hc.get("LogConfig"), self.config.get("log-driver"),
                                                self.config.get("log-opts"))
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
        for key, value in (("AutoRemove", False), ("Privileged", False), ("ReadonlyRootfs", False),
                           ("Memory", 0), ("MemorySwap", 0), ("CpuShares", 0), ("NanoCpus", 0),
                           ("PidsLimit", None), ("CgroupParent", ""), ("Binds", None), ("Mounts", None)):
            if hc.get(key) is None:
                hc[key] = value
        sec_opts = security.parse_opts(hc)  # refuses unknown SecurityOpt and UsernsMode
        sec = self._security_of(hc, sec_opts)  # compiles the profile
        userns = remap.for_container(self.remap, hc)
        device_rules = devices.rules(hc)  # checks --device paths and --device-cgroup-rule lines
        memory, swap = int(hc.get("Memory") or 0), int(hc.get("MemorySwap") or 0)
        if 0 < memory < 6 * 1024 * 1024:
            raise InvalidParameter("Minimum memory limit allowed is 6MB")
        if swap > 0 and (not memory or swap < memory):
            raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, "
                                   "see usage: MemorySwap is memory plus swap")
        if memory > 0 and not swap:  # dockerd's default, kept so that `update` can compare with it
            hc["MemorySwap"] = 2 * memory if self.host_env["swap_limit"] else -1
        if config.get("StopSignal"):
            spec.parse_signal(config["StopSignal"])
        try:
            check = healthcheck.merge(config.get("Healthcheck"), ic.get("Healthcheck"))
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
        points = mounts.parse(hc, dict(ic.get("Volumes") or {}, **(config.get("Volumes") or {})),
                              self._volumes_from(hc))
        hostconfig.volume_driver(hc, points)
        for m in points if self.selinux is not None else ():  # refused now, not at its start
            if m.get("Relabel") and m["Type"] == "bind":
                selinux.check_relabel(m["Source"])
        cid = binascii.hexlify(os.urandom(32)).decode()
        host_uts = mode == "host" or hc.get("UTSMode") == "host"
        hostname = config.get("Hostname") or (socket.gethostname() if host_uts else cid[:12])
        eps = dict(networking.get("EndpointsConfig") or {})
        if "default" in eps:
            eps["bridge" if mode == "bridge" else "none"] = eps.pop("default")
        merged = dict(config)
        labels = dict(ic.get("Labels") or {})
        labels.update(config.get("Labels") or {})
        merged.update(Hostname=hostname, Env=spec.environment(config, ic, hostname), Image=ref,
                      Cmd=config.get("Cmd") if config.get("Cmd") or config.get("Entrypoint")
                      else ic.get("Cmd"),
                      Entrypoint=config.get("Entrypoint") or ic.get("Entrypoint"), Labels=labels,
                      User=config.get("User") or ic.get("User") or "",
                      WorkingDir=config.get("WorkingDir") or ic.get("WorkingDir") or "",
                      StopSignal=config.get("StopSignal") or ic.get("StopSignal"), Healthcheck=check,
                      Volumes=config.get("Volumes") or ic.get("Volumes"),
                      ExposedPorts=dict(ic.get("ExposedPorts") or {}, **(config.get("ExposedPorts") or {}))
                      or None)
        path = os.path.join(self.containers.root, cid)
        created_volumes = []  # type: list
        layer_dirs = list(self.store.layer_dirs(image_id))
        userns_rec = None
        if userns is not None:
            layers = "vfs" if self.store.driver == "vfs" else ("copy" if self.idmap_problem else "idmap")
            userns_rec = dict(userns.spec(), Layers=layers)
            if layers == "copy":  # once per remap and layer, shared by its containers
                layer_dirs = remap.layer_copies(self.data_root, userns, layer_dirs)
        process_label, mount_label = self._labels(hc, sec_opts["label"])  # reserved
        if self.store.driver == "vfs":  # the copy comes first: no lock is held meanwhile
            _check_name_free(name, self.containers.names())  # again below, under the lock
            try:
                os.makedirs(path)
                vfs.materialize(layer_dirs, os.path.join(path, "rootfs"))
                if userns is not None:
                    remap.shift_tree(os.path.join(path, "rootfs"), userns)
                # a bind takes no context=: the copy carries the container's label itself
                selinux.relabel(os.path.join(path, "rootfs"), mount_label, False)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                self._release_label(process_label)
                raise
        with self.volumes.lock, self.containers.lock:  # this order everywhere
            try:  # (a vfs copy made above goes too if this fails; the labels are released)
                taken = self.containers.names()
                _check_name_free(name, taken)
                name = name or names.generate(taken)
                for d in ("upper", "work") if self.store.driver != "vfs" else ():
                    os.makedirs(os.path.join(path, d))  # exec/ comes with the first exec
                for m in points:
                    if m["Type"] != "volume":
                        continue
                    if not m.get("Name") or not self.volumes.exists(m["Name"]):
                        vol = self.volumes.create(m.get("Name"), anonymous=not m.get("Name"))
                        created_volumes.append(vol["Name"])
                    else:
                        vol = self.volumes.inspect(m["Name"])
                    m.update(Name=vol["Name"], Source=vol["Mountpoint"])
                self.networking.write_etc(path, hostname, mode, hc, config.get("Domainname") or "")
                if userns is not None:  # the remapped root owns its writable layer and /etc files
                    remap.own_container_files(userns, [os.path.join(path, n) for n in
                                                       ("upper", "hostname", "hosts", "resolv.conf")])
                c = Container(path, {
                    "Id": cid, "Name": name, "Created": rfc3339(time.time()), "Path": args[0],
                    "Args": args[1:],
                    "Image": ref, "ImageID": image_id, "Config": merged, "HostConfig": hc, "Mounts": points,
                    "NetworkMode": mode, "LayerDirs": layer_dirs, "Driver": self.store.driver,
                    "Userns": userns_rec, "AppArmorProfile": sec["apparmor"] or "",
                    "ProcessLabel": process_label, "MountLabel": mount_label,
                    "NetworkingConfig": {"EndpointsConfig": eps,
                                         "LegacyLinks": networking.get("LegacyLinks") or []},
                    "Cgroup": {"parent": hc.get("CgroupParent") or self.cgroup_parent, "name": cid,
                               "version": self.cgroup_version,
                               "extra": cgroups.optional_controllers(hc)}})
                c.save()
                self._prepare_cgroup(c, device_rules)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                for v in created_volumes:
                    self.volumes.remove(v)
                self._release_label(process_label)
                raise
            self.containers.add(c)
        for v in created_volumes:
            self.events.emit("volume", "create", v, {"driver": "local"})
        watch.emit(self.events, c, "create")
        return {"Id": cid, "Warnings": warnings}

    def labels_containers(self):
        # type: () -> bool
        return self.selinux is not None

    def _security_of(self, hc, opts=None):
        # type: (dict, Optional[dict]) -> dict
        """The seccomp program and no_new_privs for a process with the container's capabilities
        (opts: HostConfig.SecurityOpt already parsed by security.parse_opts)."""
        return security.process_options(hc, spec.capabilities(hc), self.seccomp_profile,
                                        bool(self.config.get("no-new-privileges")), self.lsm, opts)

    def _security(self, c):
        # type: (Container) -> dict
        out = self._security_of(c.cfg["HostConfig"])
        out["selinux"] = c.cfg.get("ProcessLabel") or ""
        return out

    def _release_label(self, label):
        # type: (str) -> None
        if self.selinux is not None:
            self.selinux.release(label)

    def _labels(self, hc, options):
        # type: (dict, list) -> tuple
        """(ProcessLabel, MountLabel) of a new container, as dockerd gives them: privileged and
        host IPC or PID containers run unlabelled, one sharing another's IPC or PID namespace
        gets its label, unless label options say otherwise (runtime/container/selinux.py)."""
        if self.selinux is None:
            asked = [o for o in options if o != "disable"]
            if asked:
                why = self.selinux_problem or (
                    "berthd applies no SELinux labels: set \"selinux-enabled\": true in daemon.json"
                    if selinux.host_enabled() else "SELinux is not enabled on this host")
                raise InvalidParameter("--security-opt label=%s: %s (leave it out or give label=disable)"
                                       % (asked[0], why))
            return "", ""
        if not options:
            if hc.get("Privileged") or "host" in (hc.get("IpcMode"), hc.get("PidMode")):
                options = ["disable"]
            else:
                shared = {}
                for field in ("IpcMode", "PidMode"):
                    mode = hc.get(field) or ""
                    if mode.startswith("container:"):
                        other = self.containers.get(mode[10:]).cfg.get("ProcessLabel") or ""
                        shared[field] = selinux.duplicate(other)
                if len(set(map(tuple, shared.values()))) > 1:
                    raise InvalidParameter("--ipc and --pid containers SELinux labels aren't the same: "
                                           "give --security-opt label=level:... explicitly")
                options = next(iter(shared.values()), [])
        return self.selinux.labels(options)

    def _check_applied_fields(self, hc, mode):
        # type: (dict, str) -> None
        """Check (and normalise in hc) the fields PID 1 and the cgroup apply at start."""
        hc["Ulimits"] = [{"Name": n, "Soft": s, "Hard": h}
                         for n, _, s, h in hostconfig.ulimits(hc.get("Ulimits"))] or None
        hc["Sysctls"] = hostconfig.sysctls(hc.get("Sysctls"), hc, mode) or None
        for field in hostconfig.NS_MODES:
            hc[field] = hostconfig.ns_mode(hc, field, lambda n: self.containers.get(n).id)

    def _volumes_from(self, hc):
        # type: (dict) -> list
        """HostConfig.VolumesFrom ("name[:ro|rw]") -> [(that container's mount points, mode)]."""
        out = []
        for item in hc.get("VolumesFrom") or []:
            name, _, mode = str(item).partition(":")
            if mode not in ("", "ro", "rw"):
                raise InvalidParameter("invalid mode for VolumesFrom %r: use ro or rw" % item)
            out.append((self.containers.get(name).cfg["Mounts"], mode))
        return out

    def _pid_of(self, name):
        # type: (str) -> int
        """The PID 1 of a running container whose namespaces another one joins."""
        c = self.containers.get(name)
        pid = c.alive_pid()
        if not pid:
            raise Conflict("cannot join the namespaces of container %s (%s): it is not running; "
                           "start it first" % (c.cfg["Name"].lstrip("/"), c.id[:12]))
        return pid

    def _prepare_cgroup(self, c, device_rules):
        # type: (Container, Optional[list]) -> None
        """A start usually follows a create at once (`run`): make the cgroup directories now
        and then begin the kernel's cgroup-lock grace period (cgroups.kick_grace_period), which
        would otherwise hold up the monitor's move of PID 1 for 6-11 ms. Best effort: the
        monitor makes the directories again, and says what failed. Not where the start renames
        a spare's cgroup instead (nursery.fits): no move to begin a grace period for, and a kick
        would only hold the cgroup mutex that the rename needs."""
        if nursery.fits(c.cfg["Cgroup"], device_rules, self.spare_parent):
            return
        try:
            c.cgroup().make_dirs()
        except OSError:
            pass
        self.kicker.kick()

    # ---------------------------------------------------------------- start

    def container_start(self, name):
        c = self.containers.get(name)
        with c.lock:
            if c.state()["Running"]:
                raise NotModified("container %s is already running" % name)
            early, c.early = c.early, []
            self.watcher.exited(c)  # the last run's die, if nobody saw it yet, comes before this start
            try:
                self._start(c, name, early)
            finally:
                for sock, _ in early:  # the monitor has its own copies now
                    sock.close()
            self._start_events(c)
            watch.emit(self.events, c, "start")
            self.watcher.add(c)
            health.check(self, c, fresh=True)

    def _start(self, c, name, early):
        # type: (Container, str, list) -> None
        """Spawn the monitor and PID 1 (c.lock held); the early attaches go to the monitor."""
        client.await_monitor_exit(c)  # it removes the cgroup we are about to recreate
        for stale in ("exit.json", restart.MANUAL_STOP):  # a start through the API resets the policy
            try:
                os.unlink(c.file(stale))
            except FileNotFoundError:
                pass
        self.execs.forget(c)  # an earlier run's execs ended with it
        cg = c.cgroup()  # its directories made at create; the monitor applies the limits
        self._relabel(c)
        run = runspec.build(c, self.containers.rootfs_mount, self.store.mount_lowerdir_option, self._pid_of)
        run["process"].update(self._security(c))
        run["attach"] = [req for _, req in early]
        kind = "run-fresh" if runspec.fresh(run) else "run"
        # the monitor moves PID 1 into the cgroup (a kick, in case create's was long ago) unless
        # it renames a spare's (run) or PID 1 enters by itself (run-fresh, cgroup v1)
        if not (nursery.fits(c.cfg["Cgroup"], run["devices"]["rules"], self.spare_parent)
                if kind == "run" else cg.self_join()):
            self.kicker.kick()
        netns_fd = self.networking.before_start(c)  # bridge: made and wired now; PID 1 joins it
        run["process"]["env"] = self.networking.process_env(c, run["process"]["env"])  # --link's
        fds = [s.fileno() for s, _ in early] + ([netns_fd] if netns_fd >= 0 else [])
        try:
            reply, sock = self.spawner.request(kind, run, fds=fds)
        except BaseException:
            cg.destroy()
            self.networking.after_start(c, False)
            raise
        finally:
            if netns_fd >= 0:
                os.close(netns_fd)
        sock.close()
        if "error" in reply:
            cg.destroy()
            self.networking.after_start(c, False)
            c.set_started({"Error": reply["error"], "ExitCode": reply.get("code", 126)})
            raise InvalidParameter("cannot start container %s: %s" % (name, reply["error"]))
        c.set_started({"Pid": reply["pid"], "PidStart": reply["start_time"],
                       "MonitorPid": reply["monitor"], "MonitorStart": reply["monitor_start"],
                       "StartedAt": run["started_at"], "FinishedAt": ZERO_TIME})
        self.networking.after_start(c, True)  # watches the exit: state.json must say running

    def _relabel(self, c):
        # type: (Container) -> None
        """SELinux: the container's /etc files get its mount label, the sources of its `:z` and
        `:Z` mounts the shared or its own (dockerd relabels at each start too), and volumes
        not labelled for containers yet the shared one (as dockerd's data root gets it from
        container-selinux's file contexts)."""
        label = c.cfg.get("MountLabel") or ""
        if self.selinux is None or not label:
            return
        for name in ("hostname", "hosts", "resolv.conf"):
            if os.path.exists(c.file(name)):
                selinux.label_file(c.file(name), label)
        for m in c.cfg["Mounts"]:
            if m.get("Relabel") and m.get("Source"):
                selinux.relabel(m["Source"], label, m["Relabel"] == "z")
            elif m["Type"] == "volume" and m.get("Source"):  # berthd's own: shared by default
                selinux.label_volume(m["Source"], self.selinux.shared_file_label())

    def _volume_events(self, c, action):
        # type: (Container, str) -> None
        for m in c.cfg["Mounts"]:
            if m["Type"] == "volume" and m.get("Name"):
                attrs = {"container": c.id, "driver": "local"}
                if action == "mount":
                    attrs.update({"destination": m.get("Destination", ""), "propagation": "",
                                  "read/write": "false" if m.get("RW") is False else "true"})
                self.events.emit("volume", action, m["Name"], attrs)

    def _start_events(self, c):
        # type: (Container) -> None
        """What comes before a run's `start` (dockerd's order): network connect, volume mount."""
        self.networking.container_events(c, "connect")
        self._volume_events(c, "mount")

    def _restart_events(self, c):
        # type: (Container) -> None
        """Before the `start` of a run the restart policy began (the watcher emits it)."""
        self._start_events(c)

    def _exit_events(self, c):
        # type: (Container) -> None
        """What follows a run's `die`: network disconnect, volume unmount."""
        self.networking.container_events(c, "disconnect")
        self._volume_events(c, "unmount")

    def _after_exit(self, c):
        # type: (Container) -> None
        """The watcher's on_exit, after each run's `die`: the exit events, and HostConfig.AutoRemove
        (`run --rm`) removes the container, except in a restart's stop."""
        self._exit_events(c)
        if c.cfg["HostConfig"].get("AutoRemove") and not c.restarting:
            self.removals.submit(self._remove_exited, c)

    def _auto_remove(self, c):
        # type: (Container) -> None
        """An AutoRemove container found running at engine start: removed once it has exited."""
        client.wait_exit(c)
        if not c.restarting:
            self._remove_exited(c)

    def _remove_exited(self, c):
        # type: (Container) -> None
        """Remove an exited AutoRemove container (unless a removal took it first) and keep its
        exit code for a wait that comes after."""
        try:
            self.container_remove(c.id, volumes=True)
        except (NotFound, Conflict):
            return
        now = time.time()
        with self.auto_removed_lock:
            self.auto_removed[c.id] = (c.name, c.final_exit_code, now)
            oldest = next(iter(self.auto_removed.values()))
            while len(self.auto_removed) > 256 or oldest[2] < now - AUTO_REMOVED_KEEP:
                self.auto_removed.popitem(last=False)
                oldest = next(iter(self.auto_removed.values()))

    def _auto_removed_code(self, name):
        # type: (str) -> Optional[int]
        """The exit code of an AutoRemove container removed in the last AUTO_REMOVED_KEEP
        seconds, by id, id prefix or name; None when there is none."""
        with self.auto_removed_lock:
            removed = list(self.auto_removed.items())
        for cid, (cname, code, when) in removed:
            if time.time() - when < AUTO_REMOVED_KEEP and (name == cname or name.lstrip("/") == cname
                                                            or (len(name) >= 3 and cid.startswith(name))):
                return code
        return None

    def _running(self, name):
        # type: (str) -> tuple
        c = self.containers.get(name)
        st = c.state()
        if not st["Running"]:
            raise Conflict("Container %s is not running" % name)
        return c, st

    def container_stop(self, name, timeout=None, signal=None):
        c = self.containers.get(name)
        st = c.state()
        if not st["Running"]:
            raise NotModified("container %s is not running" % name)
        sig = spec.parse_signal(signal or c.cfg["Config"].get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = c.cfg["Config"].get("StopTimeout")
        timeout = 10 if timeout is None else int(timeout)
        watch.emit(self.events, c, "kill", signal=sig)
        self._halt(c, sig, timeout)
        self.watcher.exited(c)
        watch.emit(self.events, c, "stop")

    def _halt(self, c, sig, timeout):
        # type: (Container, int, int) -> None
        """Stop c through the API: marked manually stopped (its restart policy will not undo
        it), sig, then SIGKILL after timeout seconds (never with timeout < 0). A container
        waiting to be restarted is just not restarted."""
        self._mark_stopped(c)
        st = c.state()
        if not st["Pid"]:
            return
        self._signal(c, st["Pid"], sig)
        if timeout >= 0 and client.wait_exit(c, timeout):
            return
        self._signal(c, st["Pid"], _signal.SIGKILL)
        client.wait_exit(c)

    def _mark_stopped(self, c):
        # type: (Container) -> None
        """The manual-stop mark (runtime/container/proc/restart.py), then the monitor told, so that
        one waiting out a restart delay gives up (its exit record is final when this returns)."""
        with open(c.file(restart.MANUAL_STOP), "w"):
            pass
        if (c.cfg["HostConfig"].get("RestartPolicy") or {}).get("Name", "no") == "no":
            return
        try:
            s = client.connect(c, {"op": "stop"})
        except ConnectionError:
            return
        if c.state()["Restarting"]:
            with s:
                s.settimeout(10)
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
        else:
            s.close()

    def _signal(self, c, pid, sig):
        # type: (Container, int, int) -> None
        if sig == _signal.SIGKILL or sig == _signal.SIGTERM:
            try:
                c.cgroup().thaw()  # a frozen process cannot act on the signal
            except OSError:
                pass
            c.forget_state()
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def container_kill(self, name, signal="SIGKILL"):
        c, st = self._running(name)
        sig = spec.parse_signal(signal or "SIGKILL")
        self._mark_stopped(c)  # as dockerd: any kill through the API counts as a manual stop
        watch.emit(self.events, c, "kill", signal=sig)
        st = c.state()
        if not st["Pid"]:
            return  # it was waiting to be restarted: now it is not
        self._signal(c, st["Pid"], sig)
        if sig == _signal.SIGKILL:
            client.wait_exit(c, 10)

    def container_restart(self, name, timeout=None, signal=None):
        c = self.containers.get(name)
        if signal:
            spec.parse_signal(signal)  # a bad name is a 400 before anything stops
        c.restarting = True  # an AutoRemove container is not removed by this stop
        try:
            if c.state()["Running"]:
                self.container_stop(name, timeout, signal)
            self.container_start(name)
        finally:
            c.restarting = False
        watch.emit(self.events, c, "restart")

    def container_pause(self, name):
        c, st = self._running(name)
        if st["Paused"]:
            raise Conflict("Container %s is already paused" % name)
        if st["Restarting"]:
            raise Conflict("Container %s is restarting, wait until the container is running" % name)
        cg = c.cgroup()
        try:
            cg.freeze()
        except OSError as exc:
            try:
                cg.thaw()  # as runc does: a freeze that did not settle is undone
            except OSError:
                pass
            raise SystemFailure("Cannot pause container %s: %s; it was left running, try again"
                                % (c.id, exc.strerror or exc)) from None
        finally:
            c.forget_state()
        watch.emit(self.events, c, "pause")

    def container_stats(self, name, stream=True, one_shot=False):
        c = self.containers.get(name)

        def read():
            # type: () -> dict
            st = c.state()
            if not st["Running"] or not st["Pid"]:
                return stats.empty(c.name, c.id)
            return stats.sample(c.cgroup(), st["Pid"], c.name, c.id)

        def gen():
            prev = read()
            if one_shot and not stream:
                yield prev
                return
            while True:
                time.sleep(1.0)
                cur = stats.chain(prev, read())
                yield cur
                if not stream or not c.state()["Running"]:
                    return
                prev = cur
        return gen()

    def container_top(self, name, ps_args="-ef"):
        c, _ = self._running(name)
        return top.top(set(c.cgroup().pids()), ps_args or "-ef")

    def container_update(self, name, update):
        c = self.containers.get(name)
        body = dict(update or {})
        req, warnings = container_update.check(body, self.host_env)
        policy = body.get("RestartPolicy") if isinstance(body.get("RestartPolicy"), dict) else None
        with c.lock:
            old = c.cfg["HostConfig"]
            new = container_update.merge(old, req, policy)
            st = c.state()
            cg = c.cgroup()
            if req and st["Running"] and cg.exists():
                try:
                    cg = limits.with_controllers(cg, cgroups.optional_controllers(new))
                    limits.apply(cg, old, new, req)
                except (limits.LimitError, OSError) as e:
                    if c.state()["Running"]:
                        raise SystemFailure("Cannot update container %s: %s" % (c.id, e)) from None
            extra = list(c.cfg["Cgroup"].get("extra") or [])
            extra += [x for x in cgroups.optional_controllers(new) if x not in extra]
            c.cfg["HostConfig"] = new
            c.cfg["Cgroup"]["extra"] = extra
            c.save()
        if st["Running"]:  # its monitor carries the policy out and removes the cgroup: tell it
            try:
                s = client.connect(c, {"op": "policy", "policy": new["RestartPolicy"], "extra": extra})
            except ConnectionError:
                pass
            else:
                with s:  # it closes the connection once applied: an exit after this uses it
                    s.settimeout(5)
                    try:
                        s.recv(1)
                    except OSError:
                        pass
        watch.emit(self.events, c, "update")
        return {"Warnings": warnings}

    def start_by_policy(self):
        # type: () -> list
        """Start, each from its own thread, the stopped containers whose restart policy says
        so (restart.start_with_engine): what berthd does when it comes up, after a reboot or a
        crash. Returns the threads."""
        threads = []
        for c in self.containers.all():
            policy = c.cfg["HostConfig"].get("RestartPolicy") or {}
            if policy.get("Name", "no") == "no":
                continue
            st = c.state()
            if st["Running"] or not c.started().get("Pid"):
                continue  # running (or restarting), or never started
            stopped = os.path.exists(c.file(restart.MANUAL_STOP))
            count = c.started().get("RestartCount", 0)
            if not restart.start_with_engine(policy, st["ExitCode"], stopped, count):
                continue
            t = threading.Thread(target=self._start_by_policy, args=(c,), name="restart-" + c.id[:12])
            t.daemon = True
            t.start()
            threads.append(t)
        return threads

    def _start_by_policy(self, c):
        # type: (Container) -> None
        try:
            self.container_start(c.id)
        except (NotModified, NotFound):
            pass
        except BerthError as e:
            import sys
            sys.stderr.write("berthd: restart policy: cannot start container %s: %s\n" % (c.name, e))

    def container_unpause(self, name):
        c, st = self._running(name)
        if not st["Paused"]:
            raise Conflict("Container %s is not paused" % name)
        try:
            c.cgroup().thaw()
        except OSError as exc:
            raise SystemFailure("Cannot unpause container %s: %s" % (c.id, exc.strerror or exc)) from None
        finally:
            c.forget_state()
        watch.emit(self.events, c, "unpause")

    def container_wait(self, name, condition="not-running", timeout=None):
        return self.container_wait_begin(name, condition)(timeout)

    def container_wait_begin(self, name, condition="not-running"):
        """Snapshot the container now (so a fast start + exit after this call is not missed),
        return wait(timeout=None) -> {"StatusCode", "Error"}."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidParameter("invalid wait condition %r: use not-running, next-exit or removed"
                                   % condition)
        try:
            c = self.containers.get(name)
        except NotFound:
            code = self._auto_removed_code(name)
            if code is None:
                raise
            return lambda timeout=None: {"StatusCode": code, "Error": None}
        before = c.started()  # rewritten by every start attempt
        # (only next-exit asks whether it runs now: not-running's wait asks the monitor)
        running = condition == "next-exit" and c.state()["Running"]

        def wait(timeout=None):
            # type: (float) -> dict
            deadline = None if timeout is None else time.time() + timeout
            pause = [0.005]

            def tick():
                # type: () -> None
                if deadline is not None and time.time() > deadline:
                    raise BerthError("timed out waiting for container %s" % name)
                time.sleep(pause[0])
                pause[0] = min(pause[0] * 1.5, 0.1)  # quick for `docker run`, cheap for long waits

            if condition == "removed":
                if not self.containers.wait_gone(c.id, None if deadline is None
                                                 else max(0.0, deadline - time.time())):
                    raise BerthError("timed out waiting for container %s" % name)
                return {"StatusCode": c.final_exit_code, "Error": None}
            if condition == "next-exit" and not running:
                while c.started() == before:
                    tick()
            if not client.wait_exit(c, None if deadline is None else max(0.0, deadline - time.time())):
                raise BerthError("timed out waiting for container %s" % name)
            code = c.state()["ExitCode"]
            if not os.path.isdir(c.path):  # removed meanwhile (AutoRemove): its files are gone
                code = c.final_exit_code
            return {"StatusCode": code, "Error": None}

        return wait

    # ---------------------------------------------------------------- remove

    def container_remove(self, name, force=False, volumes=False):
        c = self.containers.get(name)
        st = c.state()
        if st["Running"] and not force:
            raise Conflict("You cannot remove a running container %s. Stop the container before "
                           "attempting removal or force remove" % c.id)
        # claimed before the kill, as dockerd does: the AutoRemove that the exit sets off finds
        # this removal under way and leaves it alone
        if not self.containers.claim_removal(c):
            raise Conflict("removal of container %s is already in progress" % c.id)
        if st["Running"]:
            try:
                self._halt(c, _signal.SIGKILL, 10)
            except BaseException:
                self.containers.notify_gone(c.id)  # the claim goes (waiters see it is still there)
                raise
            st = c.state()
        try:
            self.watcher.exited(c)  # its die event first
            checker = getattr(c, "health", None)
            if checker is not None:
                checker.stop.set()
            c.final_exit_code = st["ExitCode"]  # for waiters on "removed"
            with c.lock:
                early, c.early = c.early, []
            for sock, _ in early:  # their clients see the end of the stream
                sock.close()
            started = c.started()
            # the directory goes once the monitor has let go of the overlay on it
            self.containers.discard(c, lambda: client.await_monitor_exit(c, 10, started))
            c.cgroup().destroy()
            if volumes:
                for m in c.cfg["Mounts"]:
                    if m["Type"] != "volume" or not m.get("Name"):
                        continue
                    if not self.containers.using_volume(m["Name"]):
                        try:
                            if "com.docker.volume.anonymous" in self.volumes.inspect(m["Name"])["Labels"]:
                                self.volumes.remove(m["Name"])
                                self.events.emit("volume", "destroy", m["Name"], {"driver": "local"})
                        except NotFound:
                            pass
        finally:
            self.networking.detach(c.id)
            self.containers.notify_gone(c.id)
            self._release_label(c.cfg.get("ProcessLabel") or "")
        watch.emit(self.events, c, "destroy")

    def container_remove_link(self, name, alias):
        c = self.containers.get(name)
        alias = alias.strip("/")

        def named(entry):
            link, _, given = str(entry).partition(":")
            return (given or link).strip("/") == alias
        with c.lock:
            hc, nc = c.cfg["HostConfig"], c.cfg.setdefault("NetworkingConfig", {})
            links = hc.get("Links") or []
            if not any(named(x) for x in links):
                raise NotFound("Could not find link %s on container %s" % (alias, name))
            hc["Links"] = [x for x in links if not named(x)] or None
            nc["LegacyLinks"] = [x for x in nc.get("LegacyLinks") or [] if x[1] != alias]
            c.save()

    def container_prune(self, filters=None):
        filters = filterargs.validate(filters, ("until", "label", "label!"))
        until = filterargs.until(filters)
        deleted, space = [], 0
        for c in self.containers.all():
            if c.state()["Running"]:
                continue
            if until is not None and parse_rfc3339(c.cfg["Created"]) >= until:
                continue
            if not filterargs.labels_match(filters, c.cfg["Config"].get("Labels")):
                continue
            size = containerfs.layer_size(c)
            try:
                self.container_remove(c.id)
            except (NotFound, Conflict):
                continue
            deleted.append(c.id)
            space += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": space}

    def container_rename(self, name, new_name):
        if not name or not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        new_name = names.validate(new_name).lstrip("/")
        c = self.containers.get(name)
        with self.containers.lock:
            if new_name == c.name:
                raise InvalidParameter("Renaming a container with the same name as its current name")
            taken = self.containers.names()
            if new_name in taken:
                raise Conflict('Error when allocating new name: Conflict. The container name "/%s" '
                               'is already in use by container "%s". You have to remove (or rename) '
                               'that container to be able to reuse that name.' % (new_name, taken[new_name]))
            self.containers.rename(c, new_name)
            c.save()

    # ---------------------------------------------------------------- files

    def container_changes(self, name):
        return containerfs.changes(self.containers.get(name))

    def container_export(self, name):
        return containerfs.export(self.containers.get(name))

    def container_archive_stat(self, name, path):
        return containerfs.path_stat(self.containers.get(name), path)

    def container_archive_get(self, name, path):
        return containerfs.get(self.containers.get(name), path)

    def container_archive_put(self, name, path, stream, no_overwrite_dir_non_dir=False):
        containerfs.put(self.containers.get(name), path, stream, no_overwrite_dir_non_dir)

    def container_counts(self):
        # type: () -> Dict[str, int]
        """How many containers there are, and running, paused, stopped (`GET /info`), from their
        states alone: no summary is made or decoded."""
        counts = {"Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0,
                  "ContainersStopped": 0}
        for c in self.containers.all():
            status = self._state(c, listing=True)["Status"]
            counts["Containers"] += 1
            counts[{"running": "ContainersRunning",
                    "paused": "ContainersPaused"}.get(status, "ContainersStopped")] += 1
        return counts

    def container_size(self, name):
        # type: (str) -> int
        """Bytes in the container's writable layer (system df)."""
        return containerfs.layer_size(self.containers.get(name))

    # ---------------------------------------------------------------- views

    def container_inspect(self, name):
        c = self.containers.get(name)
        return views.inspect(c, self._state(c), self.execs.ids(c), self.networking.view(c))

    def _state(self, c, listing=False):
        # type: (Container, bool) -> dict
        """State, with Health when the container has a check (listing: see Container.state)."""
        st = c.state(listing)
        if healthcheck.active(c.cfg["Config"].get("Healthcheck")):
            h = healthcheck.read(c.path)
            st["Health"] = {"Status": h.get("Status", healthcheck.STARTING),
                            "FailingStreak": h.get("FailingStreak", 0), "Log": h.get("Log") or []}
        return st

    def container_list(self, all=False, filters=None, limit=-1, encoded=False):
        """ContainerSummary dicts (views.Summary, which carry their JSON), or with encoded
        their JSON only (views.EncodedSummary: what a reply sends, made without the dicts)."""
        every = self.containers.all()
        chosen = listfilter.ListFilter(filters, every, self.containers.get, self._descendants)
        reads = chosen.reads_summary()
        out = []  # type: List[Any]
        for c in every:
            st = self._state(c, listing=True)
            if not all and not st["Running"] and not chosen.wants_all() and limit <= 0:
                continue
            if not chosen.matches(c, st):
                continue
            kept = self._kept_summary(c, st)
            if reads or not encoded:
                summary = kept.now()
                if not chosen.matches_network(c, summary):
                    continue
                out.append(summary)
            else:
                out.append(kept.now_json())
            if 0 < limit <= len(out):
                break
        return out

    def _kept_summary(self, c, st):
        # type: (Container, dict) -> views.KeptSummary
        """The container's ContainerSummary as kept with the state and network view it was
        made from (it changes with those or with the config only), made again when they changed."""
        netview = self.networking.view(c) if st["Running"] else views.NO_NETVIEW
        generation = c.generation()
        kept = c.cached_view(st)
        if kept is None or kept.netview != netview:
            st = c.frozen_state(st)  # (kept, and shared by the view and the container's cache)
            kept = views.KeptSummary(c, st, netview)
            c.keep_view(st, kept, generation)
        return kept

    def _descendants(self, ref):
        # type: (str) -> set
        """The id of image ref and of every image built on it (the `ancestor` filter)."""
        root = self.store.resolve(ref)
        out = {root}
        for image_id in self.store.ids():
            seen, cur = set(), image_id
            while cur and cur not in seen:
                if cur == root:
                    out.add(image_id)
                    break
                seen.add(cur)
                try:
                    cur = self.store.record(cur).get("parent")
                except (NotFound, OSError, ValueError):
                    break
        return out

    def container_logs(self, name, stdout=True, stderr=True, follow=False, since=0.0, until=0.0,
                       tail="all", timestamps=False):
        c = self.containers.get(name)
        log = runspec.log_spec(c)
        if log["driver"] == "none":
            raise InvalidParameter("configured logging driver does not support reading: container %s "
                                   "logs with the none driver" % name)
        if c.output_open():  # what PID 1 wrote before this request is in the log first
            client.flush(c)
        return logs.read(log["path"], stdout, stderr, follow, since, until, tail, timestamps,
                         running=lambda: c.output_open() or c.state()["Restarting"], driver=log["driver"],
                         max_file=log["max_file"])

    # ---------------------------------------------------------------- attach

    def container_attach(self, name, stdin=False, stdout=True, stderr=True, logs=False, stream=True):
        c = self.containers.get(name)
        cfg = c.cfg["Config"]
        # as dockerd: the end of an attached stdin closes the container's only with StdinOnce
        # and no TTY (so a detach, or a client that goes away, leaves a shell running)
        req = {"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr, "logs": logs,
               "stream": stream, "close_stdin": bool(cfg.get("StdinOnce")) and not cfg.get("Tty")}
        watch.emit(self.events, c, "attach")
        with c.lock:  # not between a start's spawn and its state record
            if c.alive_pid():
                try:
                    return client.connect(c, req)
                except ConnectionError:  # it has just exited
                    pass
            if not stream:
                raise Conflict("You cannot attach to a stopped container %s, start it first" % name)
            # not running: this attach is served from the next start's first byte on (Docker's
            # attach-then-start, as `docker run` and `start -a` do it)
            ours, theirs = socket.socketpair()
            c.early.append((theirs, req))
            return ours

    def container_resize(self, name, height, width):
        c, _ = self._running(name)
        try:
            s = client.connect(c, {"op": "resize", "h": int(height), "w": int(width)})
        except ConnectionError:
            raise Conflict("Container %s is not running" % name) from None
        with s:
            try:
                recv_exact(s, 1)
            except (EOFError, OSError):
                pass

    # ---------------------------------------------------------------- exec

    def exec_create(self, name, config):
        return self.execs.create(name, config)

    def exec_start(self, exec_id, detach=False, tty=None):
        return self.execs.start(exec_id, detach, tty)

    def exec_inspect(self, exec_id):
        return self.execs.inspect(exec_id)

    def exec_resize(self, exec_id, height, width):
        self.execs.resize(exec_id, height, width)

    # ---------------------------------------------------------------- commit

    def image_commit(self, container, repo=None, tag=None, changes=None, message=None, author=None,
                     config=None, pause=True):
        return commit.commit(self, self.store, container, repo, tag, changes, message, author, config,
                             pause)
