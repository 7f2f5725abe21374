"""`berth run`: create (pulling a missing image), attach, wait, start, and exit with the
container's code, as `docker run` does."""

import sys

from runtime.cli import attach, runflags
from runtime.cli.client import APIError, StreamError, getenv

RUN_ERROR, CANNOT_INVOKE, NOT_FOUND = 125, 126, 127


class UsageError(Exception):
    """A bad flag value; exit 125."""


def exit_code_for_start_error(message):
    # type: (str) -> int
    """docker's mapping of a failed start: 127 command not found, 126 cannot invoke, else 125."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low or "not found" in low:
        return NOT_FOUND
    if "permission denied" in low or "cannot execute" in low or "exec format error" in low:
        return CANNOT_INVOKE
    return RUN_ERROR


def parse_bytes(text):
    # type: (str) -> int
    """docker's RAMInBytes: 64m, 1g, 512k, 1048576 (binary multiples)."""
    low = text.strip().lower()
    for suffix in ("ib", "b", "i"):
        if low.endswith(suffix) and len(low) > len(suffix):
            low = low[:-len(suffix)]
            break
    power = "kmgtp".find(low[-1:]) + 1 if low else 0
    number = low[:-1] if power else low
    try:
        value = float(number)
    except ValueError:
        raise UsageError("invalid size: %r (use e.g. 64m or 1g)" % text) from None
    if value < 0:
        raise UsageError("invalid size: %r (use e.g. 64m or 1g)" % text)
    return int(value * 1024 ** power)


def security_opt(opt):
    # type: (str) -> str
    """As the docker CLI: seccomp=FILE becomes seccomp=<the file's JSON>."""
    key, sep, value = opt.partition("=")
    if key == "seccomp" and sep and value not in ("unconfined", "builtin"):
        try:
            with open(value) as f:
                return "seccomp=" + f.read()
        except OSError as e:
            raise UsageError("opening seccomp profile (%s) failed: %s" % (value, e.strerror)) from None
    return opt


def parse_device(text):
    # type: (str) -> Dict[str, str]
    """--device HOST[:CONTAINER][:PERMISSIONS] as the docker CLI reads it."""
    parts = text.split(":")
    if len(parts) == 2 and parts[1] and set(parts[1]) <= set("rwm"):
        parts = [parts[0], parts[0], parts[1]]  # HOST:PERMISSIONS
    if len(parts) > 3 or not parts[0] or (len(parts) == 3 and not set(parts[2]) <= set("rwm")):
        raise UsageError("invalid --device %r: use HOST[:CONTAINER][:rwm]" % text)
    return {"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
            "CgroupPermissions": parts[2] if len(parts) == 3 and parts[2] else "rwm"}


def restart_policy(text):
    # type: (str) -> Dict[str, Any]
    """`--restart` text (no, always, unless-stopped, on-failure[:N]) -> HostConfig.RestartPolicy;
    the daemon checks the name and the count."""
    name, sep, count = text.partition(":")
    try:
        number = int(count) if sep else 0
    except ValueError:
        raise UsageError("invalid restart policy %r: the maximum retry count must be a number "
                         "(on-failure:3)" % text) from None
    return {"Name": name, "MaximumRetryCount": number}


def duration_ns(text, flag):
    # type: (str, str) -> int
    """A Go duration (1m30s, 500ms, 2h, 10s) in nanoseconds."""
    units = {"ns": 1, "us": 1000, "ms": 1000000, "s": 1000000000, "m": 60000000000, "h": 3600000000000}
    total, num, i = 0.0, "", 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] in units else ch
        if unit not in units or not num:
            break
        total += float(num) * units[unit]
        num, i = "", i + len(unit)
    else:
        if not num and text:
            return int(total)
    raise UsageError("invalid duration %r for %s: use e.g. 30s, 1m30s or 500ms" % (text, flag))


def healthcheck(args):
    # type: (Any) -> Optional[Dict[str, Any]]
    """Config.Healthcheck from the --health-* flags (None: the image's)."""
    given = [args.health_cmd, args.health_interval, args.health_timeout, args.health_start_period,
             args.health_start_interval, args.health_retries]
    if args.no_healthcheck:
        if any(v is not None for v in given):
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if all(v is None for v in given):
        return None
    check = {"Test": ["CMD-SHELL", args.health_cmd] if args.health_cmd else None}  # type: Dict[str, Any]
    for key, flag, value in (("Interval", "--health-interval", args.health_interval),
                             ("Timeout", "--health-timeout", args.health_timeout),
                             ("StartPeriod", "--health-start-period", args.health_start_period),
                             ("StartInterval", "--health-start-interval", args.health_start_interval)):
        if value is not None:
            check[key] = duration_ns(value, flag)
    if args.health_retries is not None:
        check["Retries"] = args.health_retries
    return check


# -- run ---------------------------------------------------------------------------------------
def parser_run(p):
    """Flags of `berth run`."""
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background, print its id")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE (or KEY from here)")
    p.add_argument("-v", "--volume", action="append", default=[], help="NAME:/path[:ro] or /path")
    p.add_argument("-l", "--label", action="append", default=[], help="KEY=VALUE")
    p.add_argument("--name", help="container name")
    p.add_argument("-h", "--hostname", help="container host name")
    p.add_argument("--entrypoint", help="override the image's entrypoint")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-u", "--user", help="user[:group] inside the container")
    p.add_argument("-m", "--memory", help="memory limit, e.g. 64m")
    p.add_argument("--cpus", type=float, help="number of CPUs, e.g. 0.5")
    p.add_argument("--pids-limit", type=int, help="maximum number of processes")
    p.add_argument("--network", "--net", help="bridge (default), none, host, container:NAME or a network")
    p.add_argument("-p", "--publish", action="append", default=[], help="[IP:][HOST_PORT:]PORT[/PROTO]")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish every exposed port")
    p.add_argument("--expose", action="append", default=[], help="PORT[-PORT][/PROTO]")
    p.add_argument("--network-alias", action="append", default=[], help="another DNS name on the network")
    p.add_argument("--ip", help="IPv4 address on a user network")
    p.add_argument("--mac-address", help="MAC address of eth0 (e.g. 02:42:ac:11:00:02)")
    p.add_argument("--link", action="append", default=[], help="NAME[:ALIAS]: another container")
    p.add_argument("--add-host", action="append", default=[], help="NAME:IP (or NAME:host-gateway)")
    p.add_argument("--dns", action="append", default=[], help="DNS server")
    p.add_argument("--dns-search", action="append", default=[], help="DNS search domain")
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[], help="resolv.conf option")
    p.add_argument("--domainname", help="container NIS domain name")
    p.add_argument("--privileged", action="store_true", help="all capabilities, no seccomp, all devices")
    p.add_argument("--security-opt", action="append", default=[],
                   help="seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]")
    p.add_argument("--device", action="append", default=[], help="HOST[:CONTAINER][:rwm]")
    p.add_argument("--device-cgroup-rule", action="append", default=[], help="e.g. 'c 1:3 rwm'")
    runflags.add_flags(p)
    p.add_argument("--restart", help="restart policy: no, always, unless-stopped, on-failure[:N]")
    p.add_argument("--health-cmd", help="command to run to check health (through /bin/sh -c)")
    p.add_argument("--health-interval", help="time between checks (30s)")
    p.add_argument("--health-timeout", help="maximum time for one check (30s)")
    p.add_argument("--health-retries", type=int, help="failures in a row that mean unhealthy (3)")
    p.add_argument("--health-start-period", help="failures in this time after the start do not count")
    p.add_argument("--health-start-interval", help="time between checks in the start period (5s)")
    p.add_argument("--no-healthcheck", action="store_true", help="disable the image's HEALTHCHECK")
    p.add_argument("--log-driver", help="json-file (default), local or none")
    p.add_argument("--log-opt", action="append", default=[], help="KEY=VALUE (max-size, max-file, compress)")
    p.add_argument("image")
    p.add_argument("command", nargs="...")


def container_config(args):
    # type: (Any) -> Dict[str, Any]
    """The ContainerConfig (with HostConfig) `docker run` would send for these flags."""
    env = []
    for item in args.env:
        if "=" in item:
            env.append(item)
            continue
        value = getenv(item)  # KEY alone: from here, if it is set
        if value is not None:
            env.append("%s=%s" % (item, value))
    binds, anon = [], {}
    for spec in args.volume:
        if ":" in spec:
            binds.append(spec)
        else:
            anon[spec] = {}
    labels = dict(item.partition("=")[::2] for item in args.label)
    host = {"AutoRemove": bool(args.rm), "Binds": binds or None}  # type: Dict[str, Any]
    if args.memory:
        host["Memory"] = parse_bytes(args.memory)
    if args.cpus:
        host["NanoCpus"] = int(args.cpus * 1e9)
    if args.pids_limit:
        host["PidsLimit"] = args.pids_limit
    if args.network:
        host["NetworkMode"] = args.network
    if args.privileged:
        host["Privileged"] = True
    if args.security_opt:
        host["SecurityOpt"] = [security_opt(o) for o in args.security_opt]
    if args.device:
        host["Devices"] = [parse_device(d) for d in args.device]
    if args.device_cgroup_rule:
        host["DeviceCgroupRules"] = list(args.device_cgroup_rule)
    if args.restart:
        host["RestartPolicy"] = restart_policy(args.restart)
    if args.log_driver or args.log_opt:
        opts = {}
        for item in args.log_opt:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise UsageError("invalid log opt %r: use KEY=VALUE, e.g. max-size=10m" % item)
            opts[key] = value
        host["LogConfig"] = {"Type": args.log_driver or "", "Config": opts}
    exposed = network_flags(args, host)
    attached = not args.detach
    config = {
        "Image": args.image, "Cmd": args.command or None, "Env": env or None, "Labels": labels or None,
        "Tty": bool(args.tty), "OpenStdin": bool(args.interactive), "StdinOnce": bool(args.interactive),
        "AttachStdin": bool(args.interactive) and attached, "AttachStdout": attached,
        "AttachStderr": attached, "Volumes": anon or None, "HostConfig": host,
    }  # type: Dict[str, Any]
    check = healthcheck(args)
    if check is not None:
        config["Healthcheck"] = check
    try:
        runflags.apply(args, config, host, parse_bytes)
    except runflags.FlagError as exc:
        raise UsageError(str(exc)) from None
    if exposed:
        config["ExposedPorts"] = exposed
    if args.link:
        host["Links"] = list(args.link)
    if args.network_alias or args.ip or args.mac_address or args.link:
        ep = {"Aliases": args.network_alias or None}  # type: Dict[str, Any]
        if args.ip:
            ep["IPAMConfig"] = {"IPv4Address": args.ip}
        if args.mac_address:
            ep["MacAddress"] = args.mac_address
        if args.link and args.network not in (None, "", "default", "bridge"):
            ep["Links"] = list(args.link)  # on a user network: names the resolver answers
        config["NetworkingConfig"] = {"EndpointsConfig": {args.network or "default": ep}}
    if args.entrypoint is not None:
        config["Entrypoint"] = [args.entrypoint] if args.entrypoint else []
    for key, value in (("WorkingDir", args.workdir), ("User", args.user), ("Hostname", args.hostname),
                       ("Domainname", args.domainname)):
        if value:
            config[key] = value
    return config


def network_flags(args, host):
    # type: (Any, Dict[str, Any]) -> Dict[str, Any]
    """-p/-P/--expose/--add-host/--dns* into host (HostConfig); the ExposedPorts."""
    exposed = {}  # type: Dict[str, Any]
    if args.publish or args.expose:
        from runtime.errors import InvalidParameter
        from runtime.network import ports
        try:
            exposed, bindings = ports.parse_specs(args.publish)
            exposed.update(ports.parse_expose(args.expose))
        except InvalidParameter as exc:
            raise UsageError(str(exc)) from None
        if bindings:
            host["PortBindings"] = bindings
    if args.publish_all:
        host["PublishAllPorts"] = True
    for key, value in (("ExtraHosts", args.add_host), ("Dns", args.dns), ("DnsSearch", args.dns_search),
                       ("DnsOptions", args.dns_option)):
        if value:
            host[key] = value
    return exposed


def create_pulling(client, config, name):
    # type: (Any, Dict[str, Any], Optional[str]) -> str
    """Create the container; a missing image is pulled (with progress) and create retried. The
    daemon's warnings go to stderr, as docker run and docker create show them."""
    try:
        created = client.post("/containers/create", {"name": name}, config)
    except APIError as exc:
        if exc.status != 404 or "no such image" not in str(exc).lower():
            raise
        from runtime.cli import images
        sys.stderr.write("Unable to find image '%s' locally\n" % images.normalize(config["Image"]))
        images.pull(client, config["Image"], out=sys.stderr)
        created = client.post("/containers/create", {"name": name}, config)
    for warning in created.get("Warnings") or []:
        sys.stderr.write("WARNING: %s\n" % warning)
    return created["Id"]


def cmd_run(client, args):
    """`berth run`: create (pulling if needed), attach, wait, start; exit with the container's code."""
    try:
        config = container_config(args)
    except UsageError as exc:
        sys.stderr.write("berth: %s\n" % exc)
        return RUN_ERROR
    try:
        cid = create_pulling(client, config, args.name)
    except APIError as exc:
        sys.stderr.write("berth: Error response from daemon: %s\n" % exc)
        return RUN_ERROR
    except StreamError as exc:  # (a pull's: runtime.cli.fmt is imported only to pull)
        sys.stderr.write("berth: %s\n" % exc)
        return RUN_ERROR
    if args.detach:
        try:
            client.send("POST", "/containers/%s/start" % cid).close()
        except APIError as exc:
            sys.stderr.write("berth: Error response from daemon: %s\n" % exc)
            return exit_code_for_start_error(str(exc))
        print(cid)
        return 0
    query = {"stream": True, "stdout": True, "stderr": True, "stdin": bool(args.interactive)}
    attaching = client.request("POST", "/containers/%s/attach" % cid, query, upgrade=True)
    waiting = client.request("POST", "/containers/%s/wait" % cid,
                             {"condition": "removed" if args.rm else "next-exit"})
    conn, waiter = attaching(), waiting()
    try:
        client.send("POST", "/containers/%s/start" % cid).close()
    except APIError as exc:
        conn.close()
        waiter.close()
        sys.stderr.write("berth: Error response from daemon: %s\n" % exc)
        if args.rm:
            try:
                client.send("DELETE", "/containers/%s" % cid, {"force": True}).close()
            except APIError:
                pass
        return exit_code_for_start_error(str(exc))
    with attach.RawTerminal(args.tty and args.interactive):
        if args.tty:
            attach.watch_resize(lambda h, w: client.send(
                "POST", "/containers/%s/resize" % cid, {"h": h, "w": w}).close())
        attach.stream(conn, args.tty, stdin=args.interactive)
    result = waiter.json() or {}
    if result.get("Error"):
        sys.stderr.write("berth: %s\n" % result["Error"].get("Message"))
    return int(result.get("StatusCode", RUN_ERROR))


# -- create ------------------------------------------------------------------------------------
def parser_create(p):
    """Flags of `berth create`: those of `run` (-d and --rm as docker create takes them)."""
    parser_run(p)


def cmd_create(client, args):
    """`berth create`: create the container (pulling its image if needed) and print its id."""
    try:
        config = container_config(args)
    except UsageError as exc:
        sys.stderr.write("berth: %s\n" % exc)
        return RUN_ERROR
    print(create_pulling(client, config, args.name))
    return 0
