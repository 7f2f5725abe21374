"""`--change` instructions for import and commit (`CMD ["/bin/sh"]`, `ENV A=b`, ...), applied to
an image's container config the way Docker applies the Dockerfile instructions it allows there:
CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR."""

import json
import shlex

from runtime.errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")


def _json_or_shell(arg, shell):
    # type: (str, bool) -> list
    """A JSON array as is; anything else as `/bin/sh -c ARG` (shell) or split words."""
    if arg.startswith("["):
        try:
            value = json.loads(arg)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", arg] if shell else shlex.split(arg)


def _pairs(arg, what):
    # type: (str, str) -> list
    """`A=b C="d e"` or the old `A b c` form -> [(key, value)]."""
    words = shlex.split(arg)
    if not words:
        raise InvalidParameter("%s needs at least one argument" % what)
    if "=" not in words[0]:
        if len(words) < 2:
            raise InvalidParameter("%s %s: give KEY=VALUE" % (what, arg))
        return [(words[0], arg.split(None, 1)[1].strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise InvalidParameter("%s %s: %r is not KEY=VALUE" % (what, arg, w))
        k, v = w.split("=", 1)
        out.append((k, v))
    return out


def apply(config, changes):
    # type: (dict, list) -> dict
    """A copy of the container config (Env, Cmd, ...) with the change lines applied; an
    unknown or malformed line raises InvalidParameter naming it."""
    cfg = json.loads(json.dumps(config or {}))
    for line in changes or []:
        line = line.strip()
        if not line:
            continue
        word, _, arg = line.partition(" ")
        word, arg = word.upper(), arg.strip()
        if word not in ALLOWED:
            raise InvalidParameter("%s is not a valid change command: use one of %s"
                                   % (word, ", ".join(ALLOWED)))
        if word == "CMD":
            cfg["Cmd"] = _json_or_shell(arg, True)
        elif word == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(arg, True)
        elif word == "ENV":
            env = [e for e in cfg.get("Env") or []]
            for k, v in _pairs(arg, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + ["%s=%s" % (k, v)]
            cfg["Env"] = env
        elif word == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(arg, "LABEL"))
            cfg["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in arg.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif word == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(arg, False):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif word == "ONBUILD":
            cfg["OnBuild"] = (cfg.get("OnBuild") or []) + [arg]
        else:
            key = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[word]
            if not arg:
                raise InvalidParameter("%s needs an argument" % word)
            cfg[key] = arg
    return cfg
