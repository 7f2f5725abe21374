"""daemon.json: parse the existing file strictly, deep-merge the wanted keys, validate.

Validation follows the engine that reads the file: berth's daemon.json is checked by the
engine's own parser (``runtime/daemon/config.py``, shipped in the bundle), so provision
accepts exactly what berthd accepts; Docker's is checked against the types dockerd expects
for the keys listed here."""

from __future__ import annotations

import copy
import json
from typing import Any

from provision.engine_kind import EngineKind
from provision.errors import InputError, StepError
from provision.mirrors import validate_url
from runtime.daemon import config as berth_config

# dockerd's types for the keys provision users set most (dockerd itself checks the rest)
DOCKER_TYPES = {
    "registry-mirrors": list,
    "insecure-registries": list,
    "dns": list,
    "storage-opts": list,
    "log-opts": dict,
    "default-ulimits": dict,
    "runtimes": dict,
    "features": dict,
    "debug": bool,
    "live-restore": bool,
    "ipv6": bool,
    "iptables": bool,
    "icc": bool,
    "data-root": str,
    "storage-driver": str,
    "log-driver": str,
    "log-level": str,
    "exec-root": str,
    "group": str,
    "bip": str,
    "cgroup-parent": str,
    "max-concurrent-downloads": int,
}


def parse_existing(content: bytes | None, path: str) -> dict:
    """The current file as a dict; ``{}`` when absent; StepError with line:column when broken."""
    if content is None or not content.strip():
        return {}
    try:
        data = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise StepError(
            f"{path} is not UTF-8 text: fix or move it away, then rerun (left untouched)"
        ) from None
    except json.JSONDecodeError as e:
        raise StepError(
            f"{path} is not valid JSON (line {e.lineno} column {e.colno}: {e.msg}): fix or move "
            f"it away, then rerun (left untouched)"
        ) from None
    if not isinstance(data, dict):
        raise StepError(f"{path} must hold a JSON object, not {type(data).__name__}: fix it, then rerun")
    return data


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in: nested objects merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_setting(item: str) -> dict:
    """``KEY=VALUE`` (``a.b=VALUE`` for nested keys): VALUE is JSON when it parses, else a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise InputError(f"bad --daemon-opt {item!r}: expected KEY=VALUE, e.g. log-driver=json-file")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


def validate(config: dict, kind: EngineKind) -> None:
    """Check keys for the engine ``kind`` reads them (InputError naming the key), and that the
    registry mirrors are URLs."""
    if kind.installs_bundle:
        try:
            keys = berth_config.parse(json.dumps(config), kind.config_file)
            berth_config.check_listeners(berth_config.merged(keys, {}), kind.config_file)
        except berth_config.ConfigError as e:
            raise InputError(f"{e} (berthd would refuse it)") from None
    else:
        for key, typ in DOCKER_TYPES.items():
            if key in config and not isinstance(config[key], typ):
                raise InputError(
                    f"daemon.json key {key!r} must be a JSON {typ.__name__}, got {config[key]!r}"
                )
    for url in config.get("registry-mirrors", []):
        if not isinstance(url, str):
            raise InputError(f"registry mirror {url!r} must be a string URL")
        validate_url(url, "registry mirror")


def render(config: dict) -> bytes:
    """The file's text: 2-space indented JSON with a trailing newline (key order kept)."""
    return (json.dumps(config, indent=2) + "\n").encode()


def merged(existing: bytes | None, path: str, wanted: dict, kind: EngineKind) -> tuple[dict, dict]:
    """(current dict, merged dict) for ``wanted`` on top of the existing file; validated for
    the engine ``kind``."""
    current = parse_existing(existing, path)
    result = deep_merge(current, wanted)
    validate(result, kind)
    json.loads(render(result))  # round trip: what we write must parse
    return current, result
