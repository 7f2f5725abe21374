"""SystemBackend implementation: see runtime/api/backend/system.py for the contract."""

import os
import socket
import time

from runtime import TYPE_CHECKING, events
from runtime.events import EventLog
from runtime import __version__
from runtime.api.backend.system import SystemBackend
from runtime.atomicfile import write_text
from runtime.container import apparmor, seccomp

if TYPE_CHECKING:
    from typing import Any, Dict, List  # noqa: F401


def _os_release():
    # type: () -> Dict[str, str]
    out = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    out[key] = value.strip().strip('"')
    except OSError:
        pass
    return out


def _mem_total():
    # type: () -> int
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree_size(top):
    # type: (str) -> int
    """Bytes of the regular files under top."""
    total = 0
    for root, _dirs, files in os.walk(top):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if info.st_mode & 0o170000 == 0o100000:
                total += info.st_size
    return total


def cgroup_version():
    # type: () -> str
    """"2" on a unified (v2-only) host, else "1" (v1 or hybrid, where the v1 controllers rule)."""
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _security_options(config, selinux_labels):
    # type: (Dict[str, Any], bool) -> List[str]
    """dockerd's list: apparmor where the host runs it, the daemon's seccomp profile (builtin,
    unconfined or the file's path), selinux when containers get labels (selinux-enabled on a
    host running SELinux), userns when containers get remapped ids (userns-remap) and
    no-new-privileges when the daemon sets it for every container."""
    out = ["name=apparmor"] if apparmor.host_enabled() else []
    if selinux_labels:
        out.append("name=selinux")
    if seccomp.kernel_supports():
        out.append("name=seccomp,profile=%s" % (config.get("seccomp-profile") or "builtin"))
    if config.get("userns-remap"):
        out.append("name=userns")
    if config.get("no-new-privileges"):
        out.append("name=no-new-privileges")
    return out


def _registry_config(config):
    # type: (Dict[str, Any]) -> Dict[str, Any]
    mirrors = list(config.get("registry-mirrors") or [])
    cidrs = ["127.0.0.0/8", "::1/128"]
    index = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}}
    for entry in config.get("insecure-registries") or []:
        if "/" in entry:
            cidrs.append(entry)
        else:
            index[entry] = {"Name": entry, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index, "Mirrors": mirrors}


def random_uuid():
    # type: () -> str
    """A random (version 4) UUID, as uuid.uuid4() gives it: the uuid module imports platform
    (and, on 3.6, loads libuuid) for the daemon's life, for one id made once."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = bytes(b).hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class SystemService(SystemBackend):
    """What the engine under data_root reports of itself: counts from `images` (ImageBackend)
    and `containers` (ContainerBackend), settings from `config` (daemon.json's, read on each
    call), the storage driver in use (`storage`, runtime.store.driver.choose's); `registry` (a
    RegistryService) checks logins; `check(deep) -> report` is the data root's checker
    (runtime.datacheck, bound by the engine)."""

    def __init__(self, data_root, config, storage, images, containers, registry, check=None,
                 events=None, volumes=None):
        # type: (str, Dict[str, Any], Any, Any, Any, Any, Any, Any, Any) -> None
        self.check = check
        self.events = events if events is not None else EventLog()  # what GET /events serves
        self.volumes = volumes  # the VolumeBackend, for system df
        self.data_root = data_root
        self.config = config
        self.storage = storage
        self.images = images
        self.containers = containers
        self.registry = registry
        self._engine_id = None  # type: Any

    def engine_id(self):
        # type: () -> str
        """A stable id for this data root (created on first use, temp file + rename)."""
        if self._engine_id is None:
            path = os.path.join(self.data_root, "engine-id")
            try:
                with open(path) as f:
                    self._engine_id = f.read().strip()
            except OSError:
                self._engine_id = random_uuid()
                try:
                    write_text(path, self._engine_id + "\n")
                except OSError:
                    pass
        return self._engine_id

    def system_events(self, since=None, until=None, filters=None, stop=None):
        events.check_filters(filters)
        return self.events.subscribe(since, until, filters, stop)

    def system_df(self):
        # type: () -> Dict[str, Any]
        """`GET /system/df`: images (with the containers using each), containers (SizeRw,
        SizeRootFs), volumes (UsageData) and the bytes of the distinct layers."""
        containers = self.containers.container_list(all=True)
        used = {}  # type: Dict[str, int]
        for c in containers:
            used[c["ImageID"]] = used.get(c["ImageID"], 0) + 1
        images = []
        for img in self.images.image_list(all_images=True):
            img = dict(img, Containers=used.get(img["Id"], 0))
            images.append(img)
        sizes = {img["Id"]: img["Size"] for img in images}
        for c in containers:
            c["SizeRw"] = self.containers.container_size(c["Id"])
            c["SizeRootFs"] = c["SizeRw"] + sizes.get(c["ImageID"], 0)
        volumes = []
        users = {}  # type: Dict[str, int]
        for c in containers:
            for m in c.get("Mounts") or []:
                if m.get("Type") == "volume" and m.get("Name"):
                    users[m["Name"]] = users.get(m["Name"], 0) + 1
        for vol in (self.volumes.volume_list() if self.volumes is not None else []):
            vol = dict(vol, UsageData={"Size": _tree_size(vol.get("Mountpoint") or ""),
                                       "RefCount": users.get(vol["Name"], 0)})
            volumes.append(vol)
        return {"LayersSize": self.images.layers_size(), "Images": images,
                "Containers": containers, "Volumes": volumes, "BuildCache": []}

    def system_info(self):
        # type: () -> Dict[str, Any]
        """SystemInfo for `GET /info`, read fresh on each call (SIGHUP-reloaded keys show)."""
        config = self.config
        images = len(self.images.image_list(all_images=True))  # intermediate ones too, as dockerd counts
        osr = _os_release()
        storage = self.storage
        driver = "cgroupfs"
        for opt in config.get("exec-opts") or ():
            name, _, val = opt.partition("=")
            if name.strip() == "native.cgroupdriver":
                driver = val.strip()
        info = {
            "ID": self.engine_id(),
            "Images": images,
            "Driver": storage.name,
            "DriverStatus": [] if storage.name == "vfs" else [
                ["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Authorization": None,
                        "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True, "KernelMemory": False,
            "OomKillDisable": False, "IPv4Forwarding": True, "BridgeNfIptables": False,
            "BridgeNfIp6tables": False,
            "Debug": bool(config.get("debug")),
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "LoggingDriver": config.get("log-driver") or "json-file",
            "CgroupDriver": driver,
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": os.uname().release,
            "OperatingSystem": osr.get("PRETTY_NAME", "Linux"),
            "OSVersion": osr.get("VERSION_ID", ""),
            "OSType": "linux",
            "Architecture": os.uname().machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": _registry_config(config),
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "GenericResources": None,
            "DockerRootDir": self.data_root,
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": socket.gethostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": {"berth": {"path": "berth"}},
            "DefaultRuntime": "berth",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                      "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": bool(config.get("live-restore")),
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
            "SecurityOptions": _security_options(config, self.containers.labels_containers()),
            "Warnings": ["WARNING: " + storage.warning] if storage.warning else [],
        }  # type: Dict[str, Any]
        info.update(self.containers.container_counts())
        return info

    def registry_auth(self, auth):
        # type: (Dict[str, str]) -> Dict[str, str]
        """Check credentials against the registry in auth["serveraddress"]."""
        return self.registry.login(auth)

    def system_check(self, quick=False):
        # type: (bool) -> Dict[str, Any]
        """The data root's findings, nothing repaired."""
        return self.check(not quick)
