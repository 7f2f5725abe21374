"""Legacy container links on the default bridge (`--link NAME[:ALIAS]`, HostConfig.Links), as
dockerd makes them: the linked container's address in the linking container's /etc/hosts
(under the alias, its hostname and its name), environment variables naming its address and
exposed ports (ALIAS_PORT_80_TCP_ADDR...) and its environment (ALIAS_ENV_KEY), and, when the
bridge has `icc: false`, an ACCEPT per exposed port between the two addresses.

On a user network a link is only a name: the embedded resolver answers the alias (dns.py)."""

from runtime.errors import InvalidParameter


def parse_link(entry):
    # type: (str) -> tuple
    """'name:alias' or 'name' (a leading '/' allowed on either) -> (name, alias)."""
    name, _, alias = str(entry).partition(":")
    name, alias = name.strip("/"), (alias or name).strip("/")
    if not name or not alias or "/" in name or ":" in alias:
        raise InvalidParameter("invalid link %r: use NAME[:ALIAS] (--link web:db)" % entry)
    return name, alias


def _sorted_ports(exposed):
    """ExposedPorts keys -> [(number, proto)], tcp first, then by number (as dockerd sorts them)."""
    out = []
    for key in exposed or {}:
        num, _, proto = str(key).partition("/")
        try:
            out.append((int(num), (proto or "tcp").lower()))
        except ValueError:
            continue
    return sorted(out, key=lambda p: (p[1] != "tcp", p[1], p[0]))


def ports(exposed):
    # type: (dict) -> list
    """[(proto, number)] of a container's ExposedPorts, for the icc rules."""
    return [(proto, num) for num, proto in _sorted_ports(exposed)]


def env_vars(link_name, alias, child_ip, child_env, exposed):
    # type: (str, str, str, list, dict) -> list
    """The variables a link gives the linking container. link_name: '/parent/alias'."""
    prefix = alias.upper().replace("-", "_")
    env = []
    plist = _sorted_ports(exposed)
    start = end = None
    for i, (num, proto) in enumerate(plist):
        if i == 0:
            env.append("%s_PORT=%s://%s:%d" % (prefix, proto, child_ip, num))
            start = end = (num, proto)
        p = "%s_PORT_%d_%s" % (prefix, num, proto.upper())
        env += ["%s=%s://%s:%d" % (p, proto, child_ip, num), "%s_ADDR=%s" % (p, child_ip),
                "%s_PORT=%d" % (p, num), "%s_PROTO=%s" % (p, proto)]
        if i > 0 and num == end[0] + 1 and proto == start[1]:
            end = (num, proto)
            if i < len(plist) - 1:
                continue
        if end != start:  # a run of consecutive ports: its first and last
            p = "%s_PORT_%d_%s" % (prefix, start[0], start[1].upper())
            env += ["%s_START=%s://%s:%d" % (p, start[1], child_ip, start[0]),
                    "%s_PORT_START=%d" % (p, start[0]),
                    "%s_END=%s://%s:%d" % (p, end[1], child_ip, end[0]), "%s_PORT_END=%d" % (p, end[0])]
        start = end = (num, proto)
    env.append("%s_NAME=%s" % (prefix, link_name))
    for entry in child_env or []:
        key, sep, value = entry.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append("%s_ENV_%s=%s" % (prefix, key, value))
    return env


def host_names(alias, child_hostname, child_name):
    # type: (str, str, str) -> str
    """The names of a linked container's /etc/hosts line: the alias, its hostname, its name."""
    names = [alias, child_hostname]
    if alias != child_name:
        names.append(child_name)
    return " ".join(n for n in names if n)


def merge_env(env, extra):
    # type: (list, list) -> list
    """env with the variables of extra that it does not set itself (the container's own win)."""
    have = {e.partition("=")[0] for e in env}
    return list(env) + [e for e in extra if e.partition("=")[0] not in have]
