"""The metadata-only instructions: each changes the image config (Env, Cmd, Labels, ...) and
makes no layer. `apply(inst, cfg, env, stage)` edits cfg in place and returns the text for
the history (`created_by`)."""

import posixpath
import re

from runtime.build import words
from runtime.container.spec import parse_signal
from runtime.errors import InvalidParameter

_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9,
            "h": 3600 * 10 ** 9}


def duration_ns(text, what):
    # type: (str, str) -> int
    """A Go duration ("30s", "1m30s", "500ms") in nanoseconds."""
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if not text or pos != len(text):
        raise InvalidParameter("%s: %r is not a duration (use e.g. 30s, 1m30s, 500ms)"
                               % (what, text))
    return total


def pairs(inst, env, escape):
    # type: (object, dict, str) -> list
    """ENV/LABEL arguments: `K=V K2="v 2"` or the old `K V` form -> [(key, expanded value)]."""
    ws = words.split(inst.args, escape)
    if not ws:
        raise inst.error("needs KEY=VALUE")
    if "=" not in ws[0]:
        if len(ws) < 2:
            raise inst.error("%s needs a value: %s KEY=VALUE" % (ws[0], inst.cmd))
        rest = inst.args.split(None, 1)[1].strip()
        return [(words.expand(ws[0], env, escape), words.expand(rest, env, escape))]
    out = []
    for w in ws:
        if "=" not in w:
            raise inst.error("%r is not KEY=VALUE (give every pair as KEY=VALUE)" % w)
        k, v = w.split("=", 1)
        key = words.expand(k, env, escape)
        if not key:
            raise inst.error("empty key in %r" % w)
        out.append((key, words.expand(v, env, escape)))
    return out


def shell_form(inst, cfg):
    # type: (object, dict) -> list
    """The command of RUN/CMD/ENTRYPOINT: its JSON list, or SHELL + [text]."""
    if inst.json is not None:
        return list(inst.json)
    return list(cfg.get("Shell") or ["/bin/sh", "-c"]) + [inst.args]


def _set_env(cfg, key, value):
    env = [e for e in cfg.get("Env") or [] if e.split("=", 1)[0] != key]
    cfg["Env"] = env + ["%s=%s" % (key, value)]


def _ports(inst, env, escape):
    out = []
    for w in words.expand_all(inst.args, env, escape):
        port, _, proto = w.partition("/")
        proto = (proto or "tcp").lower()
        lo, _, hi = port.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or proto not in ("tcp", "udp", "sctp"):
            raise inst.error("invalid port %r (use PORT, PORT/tcp, PORT/udp or FROM-TO)" % w)
        for p in range(int(lo), int(hi or lo) + 1):
            out.append("%d/%s" % (p, proto))
    return out


def apply(inst, cfg, env, stage):
    # type: (object, dict, dict, object) -> str
    """Apply a metadata instruction to cfg (the image's container config); returns the
    history's created_by. stage.cmd_set tracks whether this stage set CMD."""
    esc = stage.escape
    cmd = inst.cmd
    if cmd == "ENV":
        for k, v in pairs(inst, env, esc):
            _set_env(cfg, k, v)
            env[k] = v
        return "ENV " + " ".join("%s=%s" % kv for kv in pairs(inst, env, esc))
    if cmd == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        got = pairs(inst, env, esc)
        labels.update(got)
        cfg["Labels"] = labels
        return "LABEL " + " ".join("%s=%s" % kv for kv in got)
    if cmd == "MAINTAINER":
        stage.author = inst.args
        return "MAINTAINER " + inst.args
    if cmd == "CMD":
        cfg["Cmd"] = shell_form(inst, cfg) if inst.args else None
        stage.cmd_set = True
        return "CMD " + _show(cfg["Cmd"])
    if cmd == "ENTRYPOINT":
        cfg["Entrypoint"] = shell_form(inst, cfg) if inst.args else None
        if not stage.cmd_set:
            cfg["Cmd"] = None  # an inherited CMD does not survive a new ENTRYPOINT
        return "ENTRYPOINT " + _show(cfg["Entrypoint"])
    if cmd == "SHELL":
        if not inst.json:
            raise inst.error("SHELL requires a non-empty JSON array")
        cfg["Shell"] = list(inst.json)
        return "SHELL " + _show(inst.json)
    if cmd == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        got = _ports(inst, env, esc)
        for p in got:
            ports[p] = {}
        cfg["ExposedPorts"] = ports
        return "EXPOSE " + " ".join(got)
    if cmd == "VOLUME":
        vols = dict(cfg.get("Volumes") or {})
        got = inst.json if inst.json is not None else words.expand_all(inst.args, env, esc)
        for v in got:
            if not v.strip():
                raise inst.error("VOLUME specified can not be an empty string")
            vols[v] = {}
        cfg["Volumes"] = vols
        return "VOLUME " + _show(list(got))
    if cmd == "USER":
        cfg["User"] = words.expand(inst.args, env, esc)
        return "USER " + cfg["User"]
    if cmd == "WORKDIR":
        wd = words.expand(inst.args, env, esc)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", wd))
        return "WORKDIR " + cfg["WorkingDir"]
    if cmd == "STOPSIGNAL":
        sig = words.expand(inst.args, env, esc)
        try:
            parse_signal(sig)
        except InvalidParameter as exc:
            raise inst.error(str(exc)) from None
        cfg["StopSignal"] = sig
        return "STOPSIGNAL " + sig
    if cmd == "HEALTHCHECK":
        return _healthcheck(inst, cfg)
    if cmd == "ONBUILD":
        trigger = inst.args.strip()
        word = trigger.split(None, 1)[0].upper() if trigger else ""
        if word in ("ONBUILD", "FROM", "MAINTAINER"):
            raise inst.error("%s isn't allowed as an ONBUILD trigger" % word)
        from runtime.build.dockerfile import parse_line
        parse_line(trigger, inst.line, esc)  # refused now, not in the child build
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [trigger]
        return "ONBUILD " + trigger
    raise inst.error("not a metadata instruction")


def _healthcheck(inst, cfg):
    # type: (object, dict) -> str
    text = inst.args.strip()
    word, _, rest = text.partition(" ")
    if word.upper() == "NONE":
        if rest.strip() or inst.flags:
            raise inst.error("HEALTHCHECK NONE takes no arguments or flags")
        cfg["Healthcheck"] = {"Test": ["NONE"]}
        return "HEALTHCHECK NONE"
    if word.upper() != "CMD":
        raise inst.error("use HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE")
    from runtime.build.dockerfile import parse_line
    inner = parse_line("CMD " + rest.strip(), inst.line)
    hc = {"Test": (["CMD"] + inner.json) if inner.json is not None else ["CMD-SHELL", inner.args]}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in inst.flags:
            hc[key] = duration_ns(inst.flags[flag], "HEALTHCHECK --" + flag)
    if "retries" in inst.flags:
        try:
            hc["Retries"] = int(inst.flags["retries"])
        except ValueError:
            raise inst.error("--retries must be a number, not %r" % inst.flags["retries"]) from None
    cfg["Healthcheck"] = hc
    return "HEALTHCHECK " + _show(hc["Test"])


def _show(value):
    # type: (object) -> str
    if value is None:
        return "[]"
    import json
    return json.dumps(value)
