"""The CLI's credentials store: `~/.berth/config.json` in docker's config.json format
({"auths": {"SERVER": {"auth": base64("user:password")}}}), written temp-then-rename with
mode 0600. `berth login`/`logout` write it; `pull` and `push` send its entry as the
X-Registry-Auth header. The path can be overridden (argument or $BERTH_CONFIG) so tests never
touch the real home directory. A file that cannot be read or parsed is an InvalidParameter
naming it (never taken as "no credentials").
"""

import base64
import json
import os

from runtime.atomicfile import write_json
from runtime.errors import InvalidParameter

HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def config_path(path=None):
    # type: (str) -> str
    """The config.json to use: `path`, else $BERTH_CONFIG, else ~/.berth/config.json."""
    return path or os.environ.get("BERTH_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".berth", "config.json")


def server_key(server):
    # type: (str) -> str
    """Docker's key for a server: Docker Hub is https://index.docker.io/v1/, others host[:port]."""
    server = (server or "").strip()
    bare = server.split("://", 1)[-1].rstrip("/")
    if not server or bare in HUB_KEYS or bare.split("/", 1)[0] in HUB_KEYS:
        return HUB_KEYS[0]
    return bare.split("/", 1)[0]


def _read(path):
    # type: (str) -> dict
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InvalidParameter("cannot read %s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:
        raise InvalidParameter("%s is not valid JSON (%s): fix or remove it" % (path, e)) from None
    if not isinstance(doc, dict):
        raise InvalidParameter("%s is not a JSON object: fix or remove it" % path)
    return doc


def detach_keys(path=None):
    # type: (str) -> str
    """The config file's `detachKeys` (as docker's config.json has it), or ""."""
    value = _read(config_path(path)).get("detachKeys")
    return value if isinstance(value, str) else ""


def _write(path, doc):
    # type: (str, dict) -> None
    d = os.path.dirname(path)
    os.makedirs(d, mode=0o700, exist_ok=True)
    write_json(path, doc, mode=0o600, indent="\t")


def load(server, path=None):
    # type: (str, str) -> dict
    """{"username", "password", "serveraddress"[, "identitytoken"]} for `server`, or None."""
    auths = _read(config_path(path)).get("auths") or {}
    key = server_key(server)
    entry = None
    for k, v in auths.items():
        if server_key(k) == key:
            entry = v
            break
    if not entry:
        return None
    out = {"serveraddress": key}
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise InvalidParameter("%s: bad auth entry for %s: run `berth login %s` again"
                                   % (config_path(path), key, key)) from None
        out.update(username=user, password=password)
    if entry.get("identitytoken"):
        out["identitytoken"] = entry["identitytoken"]
    return out


def save(server, username, password, path=None, identitytoken=None):
    # type: (str, str, str, str, str) -> str
    """Store credentials for `server` (mode 0600, other entries kept); returns the key used."""
    p = config_path(path)
    doc = _read(p)
    key = server_key(server)
    auths = doc.setdefault("auths", {})
    for k in [k for k in auths if server_key(k) == key]:
        del auths[k]
    entry = {"auth": base64.b64encode(("%s:%s" % (username, password)).encode()).decode()}
    if identitytoken:
        entry["identitytoken"] = identitytoken
    auths[key] = entry
    _write(p, doc)
    return key


def erase(server, path=None):
    # type: (str, str) -> bool
    """Remove the credentials for `server`; False when there were none."""
    p = config_path(path)
    doc = _read(p)
    auths = doc.get("auths") or {}
    key = server_key(server)
    found = [k for k in auths if server_key(k) == key]
    for k in found:
        del auths[k]
    if found:
        _write(p, doc)
    return bool(found)
