"""Request bodies checked against the Go types dockerd decodes them into (API 1.44), so a
field of the wrong JSON type is a 400 worded as Go's decoder words it (`invalid JSON: json:
cannot unmarshal string into Go struct field CreateRequest.HostConfig.Memory of type int64`)
instead of an error deep in the engine. A field name in another case is the field, and unknown
fields pass, as Go's decoder does; null is every type's zero value."""

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Any, Dict  # noqa: F401

S, B, INT, U = "string", "bool", "int64", "uint16"
LIST_S, MAP_S, STRSLICE = "[]string", "map[string]string", "strslice.StrSlice"
OBJ, LIST_OBJ, MAP_OBJ = "object", "[]object", "map[string]object"

_LOG_CONFIG = {"Type": S, "Config": MAP_S}
_RESTART = {"Name": S, "MaximumRetryCount": INT}
_MOUNT = {"Type": S, "Source": S, "Target": S, "ReadOnly": B, "Consistency": S,
          "BindOptions": {"Propagation": S, "NonRecursive": B, "CreateMountpoint": B},
          "VolumeOptions": {"NoCopy": B, "Labels": MAP_S, "DriverConfig": {"Name": S, "Options": MAP_S}},
          "TmpfsOptions": {"SizeBytes": INT, "Mode": "uint32"}}
_HEALTH = {"Test": LIST_S, "Interval": INT, "Timeout": INT, "StartPeriod": INT, "StartInterval": INT,
           "Retries": INT}
HOST_CONFIG = {
    "Binds": LIST_S, "ContainerIDFile": S, "LogConfig": _LOG_CONFIG, "NetworkMode": S,
    "PortBindings": MAP_OBJ, "RestartPolicy": _RESTART, "AutoRemove": B, "VolumeDriver": S,
    "VolumesFrom": LIST_S, "Annotations": MAP_S, "CapAdd": STRSLICE, "CapDrop": STRSLICE,
    "CgroupnsMode": S, "Dns": LIST_S, "DnsOptions": LIST_S, "DnsSearch": LIST_S,
    "ExtraHosts": LIST_S, "GroupAdd": LIST_S, "IpcMode": S, "Cgroup": S, "Links": LIST_S,
    "OomScoreAdj": INT, "PidMode": S, "Privileged": B, "PublishAllPorts": B, "ReadonlyRootfs": B,
    "SecurityOpt": LIST_S, "StorageOpt": MAP_S, "Tmpfs": MAP_S, "UTSMode": S, "UsernsMode": S,
    "ShmSize": INT, "Sysctls": MAP_S, "Runtime": S, "Isolation": S, "CpuShares": INT, "Memory": INT,
    "NanoCpus": INT, "CgroupParent": S, "BlkioWeight": U, "BlkioWeightDevice": LIST_OBJ,
    "BlkioDeviceReadBps": LIST_OBJ, "BlkioDeviceWriteBps": LIST_OBJ,
    "BlkioDeviceReadIOps": LIST_OBJ, "BlkioDeviceWriteIOps": LIST_OBJ, "CpuPeriod": INT,
    "CpuQuota": INT, "CpuRealtimePeriod": INT, "CpuRealtimeRuntime": INT, "CpusetCpus": S,
    "CpusetMems": S, "Devices": LIST_OBJ, "DeviceCgroupRules": LIST_S, "DeviceRequests": LIST_OBJ,
    "KernelMemoryTCP": INT, "MemoryReservation": INT, "MemorySwap": INT, "MemorySwappiness": INT,
    "OomKillDisable": B, "PidsLimit": INT, "Ulimits": LIST_OBJ, "CpuCount": INT, "CpuPercent": INT,
    "IOMaximumIOps": "uint64", "IOMaximumBandwidth": "uint64", "Mounts": [_MOUNT],
    "MaskedPaths": LIST_S, "ReadonlyPaths": LIST_S, "Init": B, "ConsoleSize": "[2]uint",
}
CONTAINER_CONFIG = {
    "Hostname": S, "Domainname": S, "User": S, "AttachStdin": B, "AttachStdout": B,
    "AttachStderr": B, "ExposedPorts": MAP_OBJ, "Tty": B, "OpenStdin": B, "StdinOnce": B,
    "Env": LIST_S, "Cmd": STRSLICE, "Healthcheck": _HEALTH, "ArgsEscaped": B, "Image": S,
    "Volumes": MAP_OBJ, "WorkingDir": S, "Entrypoint": STRSLICE, "NetworkDisabled": B,
    "MacAddress": S, "OnBuild": LIST_S, "Labels": MAP_S, "StopSignal": S, "StopTimeout": INT,
    "Shell": STRSLICE, "HostConfig": HOST_CONFIG, "NetworkingConfig": OBJ,
}
_RESOURCES = ("CpuShares Memory NanoCpus CgroupParent BlkioWeight BlkioWeightDevice BlkioDeviceReadBps "
              "BlkioDeviceWriteBps BlkioDeviceReadIOps BlkioDeviceWriteIOps CpuPeriod CpuQuota "
              "CpuRealtimePeriod CpuRealtimeRuntime CpusetCpus CpusetMems Devices DeviceCgroupRules "
              "DeviceRequests KernelMemoryTCP MemoryReservation MemorySwap MemorySwappiness OomKillDisable "
              "PidsLimit Ulimits CpuCount CpuPercent IOMaximumIOps IOMaximumBandwidth Init").split()
UPDATE_CONFIG = dict({k: HOST_CONFIG[k] for k in _RESOURCES}, KernelMemory=INT, RestartPolicy=_RESTART)
EXEC_CONFIG = {
    "AttachStdin": B, "AttachStdout": B, "AttachStderr": B, "Tty": B, "ConsoleSize": "[2]uint",
    "DetachKeys": S, "Env": LIST_S, "Privileged": B, "User": S, "WorkingDir": S, "Cmd": STRSLICE,
}
VOLUME_CREATE = {"Name": S, "Driver": S, "DriverOpts": MAP_S, "Labels": MAP_S,
                 "ClusterVolumeSpec": OBJ}
_IPAM = {"Driver": S, "Config": [{"Subnet": S, "IPRange": S, "Gateway": S, "AuxiliaryAddresses": MAP_S}],
         "Options": MAP_S}
NETWORK_CREATE = {"Name": S, "CheckDuplicate": B, "Driver": S, "Scope": S, "EnableIPv6": B,
                  "IPAM": _IPAM, "Internal": B, "Attachable": B, "Ingress": B, "ConfigOnly": B,
                  "ConfigFrom": {"Network": S}, "Options": MAP_S, "Labels": MAP_S}
_ENDPOINT = {"IPAMConfig": {"IPv4Address": S, "IPv6Address": S, "LinkLocalIPs": LIST_S},
             "Links": LIST_S, "Aliases": LIST_S, "MacAddress": S, "DriverOpts": MAP_S,
             "NetworkID": S, "EndpointID": S, "Gateway": S, "IPAddress": S}
NETWORK_CONNECT = {"Container": S, "EndpointConfig": _ENDPOINT}
NETWORK_DISCONNECT = {"Container": S, "Force": B}


def _json_kind(value):
    # type: (Any) -> str
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fits(value, want):
    # type: (Any, Any) -> bool
    """Whether value decodes into the Go type named by want (a string, a dict of fields, or a
    one-element list of a dict for a list of structs)."""
    if value is None:
        return True
    kind = _json_kind(value)
    if isinstance(want, dict) or want in (OBJ, MAP_OBJ):
        return kind == "object"
    if isinstance(want, list):
        return kind == "array"
    if want == S:
        return kind == "string"
    if want == B:
        return kind == "bool"
    if want in (INT, U, "uint32", "uint64"):
        if kind != "number" or (isinstance(value, float) and not value.is_integer()):
            return False
        return value >= 0 or want == INT
    if want == STRSLICE:
        return kind == "string" or (kind == "array" and all(isinstance(v, str) for v in value))
    if want == LIST_S:
        return kind == "array" and all(v is None or isinstance(v, str) for v in value)
    if want == MAP_S:
        return kind == "object" and all(v is None or isinstance(v, str) for v in value.values())
    if want in (LIST_OBJ, "[2]uint"):
        return kind == "array"
    return True


def _go_name(want):
    # type: (Any) -> str
    if isinstance(want, dict):
        return "struct"
    if isinstance(want, list):
        return "[]struct"
    return want


def check(body, schema, struct):
    # type: (Dict[str, Any], Dict[str, Any], str) -> Dict[str, Any]
    """body (a StrSlice given as one string made a one-element list, as Go decodes it), or
    InvalidParameter naming the first field of the wrong JSON type."""
    _check(body, schema, struct)
    return body


def _check(body, schema, path):
    # type: (Dict[str, Any], Dict[str, Any], str) -> None
    folded = {k.lower(): k for k in schema}
    for key in list(body):  # Go matches a field name whatever its case (docker-py: CPURealtimePeriod)
        name = folded.get(key.lower()) if isinstance(key, str) else None
        if name is not None and name != key and name not in body:
            body[name] = body.pop(key)
    for key, want in schema.items():
        if key not in body:
            continue
        value = body[key]
        where = "%s.%s" % (path, key)
        if not _fits(value, want):
            shown = _json_kind(value)
            if shown == "number":
                shown = "number %s" % value
            raise InvalidParameter("invalid JSON: json: cannot unmarshal %s into Go struct field %s "
                                   "of type %s" % (shown, where, _go_name(want)))
        if want == STRSLICE and isinstance(value, str):
            body[key] = [value]  # Go's StrSlice takes one string as a one-element list
        elif isinstance(want, dict) and isinstance(value, dict):
            _check(value, want, where)
        elif isinstance(want, list) and isinstance(value, list):
            for item in value:
                if not isinstance(item, dict):
                    raise InvalidParameter("invalid JSON: json: cannot unmarshal %s into Go struct "
                                           "field %s of type struct" % (_json_kind(item), where))
                _check(item, want[0], where)
        elif want in (LIST_OBJ,) and isinstance(value, list):
            for item in value:
                if item is not None and not isinstance(item, dict):
                    raise InvalidParameter("invalid JSON: json: cannot unmarshal %s into Go struct "
                                           "field %s of type struct" % (_json_kind(item), where))
