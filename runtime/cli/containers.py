"""Container commands: ps, logs, stop, kill, rm, start, restart, pause, unpause, exec, wait,
attach, rename, container inspect."""

import sys

from runtime.cli import fmt
from runtime.cli.opts import filters_arg
from runtime.cli.client import APIError


# -- ps ----------------------------------------------------------------------------------------
def parser_ps(p):
    """Flags of `berth ps`."""
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("-f", "--filter", action="append", default=[], help="key=value (status, name, label, id)")
    p.add_argument("-n", "--last", type=int, default=-1, help="the n last created")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("--format", help="Go template (table ..., {{.Names}}, {{json .}})")
    p.add_argument("-s", "--size", action="store_true", help="(accepted; sizes are not shown)")


PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Names": "NAMES",
              "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE",
              "Size": "SIZE", "LocalVolumes": "LOCAL VOLUMES"}


def ps_context(c, no_trunc=False):
    # type: (Dict[str, Any], bool) -> Dict[str, Any]
    """The fields docker's ps --format sees for one container (all strings)."""
    import time
    command = c.get("Command") or ""
    labels = c.get("Labels") or {}
    return {
        "ID": c["Id"] if no_trunc else c["Id"][:12], "Image": c.get("Image") or "",
        "Command": '"%s"' % (command if no_trunc else fmt.ellipsis(command, 20)),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(c.get("Created") or 0)),
        "RunningFor": fmt.since(c.get("Created") or 0),
        "Ports": ports_column(c.get("Ports") or []),
        "State": c.get("State") or "", "Status": c.get("Status") or "",
        "Names": ",".join(n.lstrip("/") for n in c.get("Names") or []),
        "Labels": ",".join("%s=%s" % kv for kv in sorted(labels.items())),
        "Mounts": ",".join(m.get("Name") or m.get("Source") or "" for m in c.get("Mounts") or []),
        "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())),
        "LocalVolumes": str(len([m for m in c.get("Mounts") or [] if m.get("Type") == "volume"])),
        "Size": "0B",
    }


def _start_error_code(message):
    # type: (str) -> int
    from runtime.cli.run import exit_code_for_start_error
    return exit_code_for_start_error(message)


def cmd_ps(client, args):
    """`berth ps`: docker's columns."""
    query = {"all": True if args.all or args.last > 0 else None,
             "limit": args.last if args.last > 0 else None,
             "filters": filters_arg(args.filter)}
    rows = client.get("/containers/json", query) or []
    if args.format and not args.quiet:
        from runtime.cli import gotemplate
        try:
            gotemplate.render_list(args.format, [ps_context(c, args.no_trunc) for c in rows],
                                   PS_HEADERS, sys.stdout)
        except ValueError as exc:
            sys.stderr.write("berth: %s\n" % exc)
            return 1
        return 0
    if args.quiet:
        sys.stdout.write("".join((c["Id"] if args.no_trunc else c["Id"][:12]) + "\n" for c in rows))
        return 0
    table = []
    for c in rows:
        command = c.get("Command") or ""
        ports = ports_column(c.get("Ports") or [])
        table.append([
            c["Id"] if args.no_trunc else c["Id"][:12], c.get("Image") or "",
            '"%s"' % (command if args.no_trunc else fmt.ellipsis(command, 20)),
            fmt.since(c.get("Created") or 0), c.get("Status") or c.get("State") or "", ports,
            ",".join(n.lstrip("/") for n in c.get("Names") or []),
        ])
    fmt.table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], table)
    return 0


def ports_column(ports):
    # type: (List[Dict[str, Any]]) -> str
    """docker ps's PORTS: 0.0.0.0:8080->80/tcp, 443/tcp (sorted, unpublished ones bare)."""
    out = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort") or 0, p.get("Type") or "", p.get("IP") or "")):
        if p.get("PublicPort"):
            out.append("%s:%s->%s/%s" % (p.get("IP") or "0.0.0.0", p["PublicPort"], p.get("PrivatePort"),
                                          p.get("Type")))
        else:
            out.append("%s/%s" % (p.get("PrivatePort"), p.get("Type")))
    return ", ".join(out)


# -- port --------------------------------------------------------------------------------------
def parser_port(p):
    """Flags of `berth port`."""
    p.add_argument("container")
    p.add_argument("port", nargs="?", help="PORT[/PROTO]")


def cmd_port(client, args):
    """`berth port`: the container's published ports (80/tcp -> 0.0.0.0:8080)."""
    c = client.get("/containers/%s/json" % args.container)
    ports = (c.get("NetworkSettings") or {}).get("Ports") or {}
    if args.port:
        key = args.port if "/" in args.port else args.port + "/tcp"
        bound = ports.get(key)
        if not bound:
            sys.stderr.write("Error: No public port '%s' published for %s\n" % (key, args.container))
            return 1
        for b in bound:
            print("%s:%s" % (b.get("HostIp") or "0.0.0.0", b.get("HostPort")))
        return 0
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]), k)):
        for b in ports[key] or []:
            print("%s -> %s:%s" % (key, b.get("HostIp") or "0.0.0.0", b.get("HostPort")))
    return 0


# -- logs --------------------------------------------------------------------------------------
def parser_logs(p):
    """Flags of `berth logs`."""
    p.add_argument("-f", "--follow", action="store_true", help="follow the output")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("-n", "--tail", default="all", help="lines from the end")
    p.add_argument("--since", help="from this time: RFC 3339, unix seconds or relative (10m)")
    p.add_argument("--until", help="up to this time: RFC 3339, unix seconds or relative (10m)")
    p.add_argument("container")


def _when(flag, value):
    # type: (str, Optional[str]) -> Optional[str]
    """A --since/--until value as the unix seconds the API takes."""
    if not value:
        return None
    from runtime.timefmt import parse_timestamp
    try:
        return "%.9f" % parse_timestamp(value)
    except ValueError as exc:
        raise ValueError("invalid value for --%s: %s" % (flag, exc)) from None


def cmd_logs(client, args):
    """`berth logs`: framed streams go to stdout and stderr."""
    try:
        since, until = _when("since", args.since), _when("until", args.until)
    except ValueError as exc:
        sys.stderr.write("berth: %s\n" % exc)
        return 1
    query = {"stdout": True, "stderr": True, "follow": args.follow, "timestamps": args.timestamps,
             "tail": args.tail, "since": since, "until": until}
    resp = client.send("GET", "/containers/%s/logs" % args.container, query)
    tty = "raw-stream" in resp.headers.get("content-type", "")
    from runtime.cli import attach
    attach.stream(resp, tty)
    return 0


# -- simple verbs over several containers ------------------------------------------------------
def _each(client, names, method, path, query=None):
    # type: (Any, List[str], str, str, Optional[Dict[str, Any]]) -> int
    status = 0
    for name in names:
        try:
            client.send(method, path % name, query).close()
            print(name)
        except APIError as exc:
            sys.stderr.write("Error response from daemon: %s\n" % exc)
            status = 1
    return status


def _names(p):
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def parser_stop(p):
    """Flags of `berth stop`."""
    p.add_argument("-t", "--time", type=int, help="seconds before SIGKILL")
    p.add_argument("-s", "--signal", help="signal to send first")
    _names(p)


def cmd_stop(client, args):
    """`berth stop`."""
    return _each(client, args.containers, "POST", "/containers/%s/stop",
                 {"t": args.time, "signal": args.signal})


def parser_restart(p):
    """Flags of `berth restart`."""
    p.add_argument("-t", "--time", type=int, help="seconds before SIGKILL")
    p.add_argument("-s", "--signal", help="signal to stop with")
    _names(p)


def cmd_restart(client, args):
    """`berth restart`."""
    return _each(client, args.containers, "POST", "/containers/%s/restart",
                 {"t": args.time, "signal": args.signal})


def parser_kill(p):
    """Flags of `berth kill`."""
    p.add_argument("-s", "--signal", default="KILL", help="signal (default KILL)")
    _names(p)


def cmd_kill(client, args):
    """`berth kill`."""
    return _each(client, args.containers, "POST", "/containers/%s/kill", {"signal": args.signal})


def parser_rm(p):
    """Flags of `berth rm`."""
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    p.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes too")
    _names(p)


def cmd_rm(client, args):
    """`berth rm`."""
    return _each(client, args.containers, "DELETE", "/containers/%s",
                 {"force": args.force, "v": args.volumes})


parser_pause = parser_unpause = _names


def cmd_pause(client, args):
    """`berth pause`."""
    return _each(client, args.containers, "POST", "/containers/%s/pause")


def cmd_unpause(client, args):
    """`berth unpause`."""
    return _each(client, args.containers, "POST", "/containers/%s/unpause")


def parser_wait(p):
    """Flags of `berth wait`."""
    _names(p)


def cmd_wait(client, args):
    """`berth wait`: print each exit code."""
    status = 0
    for name in args.containers:
        try:
            print(client.post("/containers/%s/wait" % name).get("StatusCode"))
        except APIError as exc:
            sys.stderr.write("Error response from daemon: %s\n" % exc)
            status = 1
    return status


def parser_start(p):
    """Flags of `berth start`."""
    p.add_argument("-a", "--attach", action="store_true", help="attach stdout/stderr, exit with its code")
    p.add_argument("-i", "--interactive", action="store_true", help="attach stdin")
    _names(p)


def cmd_start(client, args):
    """`berth start [-a]`."""
    if not (args.attach or args.interactive):
        return _each(client, args.containers, "POST", "/containers/%s/start")
    name = args.containers[0]
    tty = bool((client.get("/containers/%s/json" % name).get("Config") or {}).get("Tty"))
    query = {"stream": True, "stdout": True, "stderr": True, "stdin": args.interactive}
    conn = client.send("POST", "/containers/%s/attach" % name, query, upgrade=True)
    waiter = client.send("POST", "/containers/%s/wait" % name, {"condition": "next-exit"})
    try:
        client.send("POST", "/containers/%s/start" % name).close()
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return _start_error_code(str(exc))
    from runtime.cli import attach
    with attach.RawTerminal(tty and args.interactive):
        attach.stream(conn, tty, stdin=args.interactive)
    return int((waiter.json() or {}).get("StatusCode", 1))


# -- exec --------------------------------------------------------------------------------------
def parser_exec(p):
    """Flags of `berth exec`."""
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("container")
    p.add_argument("command", nargs="...")


def cmd_exec(client, args):
    """`berth exec`: exit with the command's code."""
    if not args.command:
        sys.stderr.write("berth: exec needs a command\n")
        return 125
    config = {"Cmd": args.command, "AttachStdin": args.interactive and not args.detach,
              "AttachStdout": not args.detach, "AttachStderr": not args.detach, "Tty": args.tty,
              "Env": args.env or None, "User": args.user or "", "WorkingDir": args.workdir or ""}
    try:
        exec_id = client.post("/containers/%s/exec" % args.container, body=config)["Id"]
        if args.detach:
            client.send("POST", "/exec/%s/start" % exec_id, body={"Detach": True, "Tty": args.tty}).close()
            return 0
        conn = client.send("POST", "/exec/%s/start" % exec_id, body={"Detach": False, "Tty": args.tty},
                           upgrade=True)
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return _start_error_code(str(exc)) if exc.status >= 500 else 1
    from runtime.cli import attach
    with attach.RawTerminal(args.tty and args.interactive):
        if args.tty:
            attach.watch_resize(lambda h, w: client.send(
                "POST", "/exec/%s/resize" % exec_id, {"h": h, "w": w}).close())
        attach.stream(conn, args.tty, stdin=args.interactive)
    code = client.get("/exec/%s/json" % exec_id).get("ExitCode")
    return int(code if code is not None else 0)


# -- attach, rename ----------------------------------------------------------------------------
def parser_attach(p):
    """Flags of `berth attach`."""
    p.add_argument("--detach-keys", help="keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("--sig-proxy", default="true", help="(accepted)")
    p.add_argument("container")


def cmd_attach(client, args):
    """`berth attach`: the container's stdio here until it exits or the detach keys."""
    doc = client.get("/containers/%s/json" % args.container)
    state = doc.get("State") or {}
    if not state.get("Running"):
        sys.stderr.write("You cannot attach to a stopped container, start it first\n")
        return 1
    config = doc.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = bool(config.get("OpenStdin")) and not args.no_stdin
    keys = args.detach_keys
    if not keys and stdin:
        from runtime.cli import credentials
        keys = credentials.detach_keys() or None  # the config file's, as docker's CLI reads it
    query = {"stream": True, "stdout": True, "stderr": True, "stdin": stdin, "detachKeys": keys}
    conn = client.send("POST", "/containers/%s/attach" % args.container, query, upgrade=True)
    from runtime.cli import attach
    with attach.RawTerminal(tty and stdin):
        if tty:
            attach.watch_resize(lambda h, w: client.send(
                "POST", "/containers/%s/resize" % args.container, {"h": h, "w": w}).close())
        attach.stream(conn, tty, stdin=stdin)
    after = (client.get("/containers/%s/json" % args.container).get("State") or {})
    if after.get("Running"):
        return 0  # detached
    return int(after.get("ExitCode") or 0)


def parser_rename(p):
    """Flags of `berth rename`."""
    p.add_argument("container")
    p.add_argument("new_name", metavar="NEW_NAME")


def cmd_rename(client, args):
    """`berth rename CONTAINER NEW_NAME`."""
    client.send("POST", "/containers/%s/rename" % args.container, {"name": args.new_name}).close()
    return 0


def parser_inspect(p):
    """Flags of `berth container inspect`."""
    from runtime.cli import system
    system.parser_inspect(p)


def cmd_inspect(client, args):
    """`berth inspect --type container`."""
    from runtime.cli import system
    args.type = "container"
    return system.cmd_inspect(client, args)
