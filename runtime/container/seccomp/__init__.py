"""Which seccomp program a container runs under, compiled once per (profile, capabilities) and
cached, so a start only hands the bytes to PID 1 (runtime/container/proc/seccomp.py installs
them).

A profile is "builtin" (dockerd's default, default_profile.py), "unconfined", or a JSON text in
dockerd's schema (`--security-opt seccomp=FILE`, whose content the docker CLI sends, or the
daemon's `seccomp-profile` file)."""

import binascii
import hashlib
import json

from runtime import TYPE_CHECKING
from runtime.container.seccomp import bpf
from runtime.container.seccomp.bpf import ProfileError  # noqa: F401 - re-exported
from runtime.container.seccomp.default_profile import PROFILE as DEFAULT_PROFILE

if TYPE_CHECKING:
    from typing import Dict, Iterable, Optional, Tuple  # noqa: F401

BUILTIN = "builtin"
UNCONFINED = "unconfined"

_cache = {}  # type: Dict[Tuple[str, frozenset], str]


_supported = None  # type: Optional[bool]


def kernel_supports():
    # type: () -> bool
    """Whether this kernel has seccomp (a Seccomp line in /proc/self/status), checked once."""
    global _supported
    if _supported is None:
        try:
            with open("/proc/self/status") as f:
                _supported = any(line.startswith("Seccomp:") for line in f)
        except OSError:
            _supported = False
    return _supported


def parse_profile(text, where="seccomp profile"):
    # type: (str, str) -> dict
    """The JSON object of a profile text; ProfileError naming where when it is not one."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise ProfileError("%s: invalid JSON: %s" % (where, e)) from None
    if not isinstance(profile, dict):
        raise ProfileError("%s: the top level must be a JSON object" % where)
    if profile.get("defaultAction") == "SCMP_ACT_NOTIFY" or profile.get("listenerPath"):
        raise ProfileError("%s: SCMP_ACT_NOTIFY and listenerPath are not supported" % where)
    if profile.get("flags"):
        raise ProfileError("%s: flags %s are not supported (leave them out)" % (where, profile["flags"]))
    return profile


def program_b64(profile, cap_names):
    # type: (str, Iterable[str]) -> Optional[str]
    """The base64 sock_filter array for profile (BUILTIN, UNCONFINED or a JSON text) and the
    capability names ("CAP_CHOWN"...) the process holds; None when unconfined. Cached."""
    if profile == UNCONFINED:
        return None
    caps = frozenset(cap_names)
    key = (BUILTIN if profile == BUILTIN else hashlib.sha256(profile.encode()).hexdigest(), caps)
    hit = _cache.get(key)
    if hit is None:
        data = DEFAULT_PROFILE if profile == BUILTIN else parse_profile(profile)
        hit = binascii.b2a_base64(bpf.compile_profile(data, set(caps))).decode().strip()
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = hit
    return hit
