"""`berth info`, `system check`, `version`, `inspect`, `login`, `logout`, `events`."""

import getpass
import json
import os
import sys

from runtime import __version__
from runtime.cli import fmt
from runtime.cli.client import API_VERSION, APIError


def parser_info(p):
    """Flags of `berth info`."""
    p.add_argument("-f", "--format", help="'json' for the raw object")


def cmd_info(client, args):
    """Server facts, in docker's layout."""
    info = client.get("/info")
    if args.format == "json":
        print(json.dumps(info))
        return 0
    reg = info.get("RegistryConfig") or {}
    lines = [
        "Client:", " Version:    %s" % __version__, " Context:    default", "",
        "Server:",
        " Containers: %s" % info.get("Containers"),
        "  Running: %s" % info.get("ContainersRunning"),
        "  Paused: %s" % info.get("ContainersPaused"),
        "  Stopped: %s" % info.get("ContainersStopped"),
        " Images: %s" % info.get("Images"),
        " Server Version: %s" % info.get("ServerVersion"),
        " Storage Driver: %s" % info.get("Driver"),
        " Logging Driver: %s" % info.get("LoggingDriver"),
        " Cgroup Driver: %s" % info.get("CgroupDriver"),
        " Cgroup Version: %s" % info.get("CgroupVersion"),
        " Kernel Version: %s" % info.get("KernelVersion"),
        " Operating System: %s" % info.get("OperatingSystem"),
        " OSType: %s" % info.get("OSType"),
        " Architecture: %s" % info.get("Architecture"),
        " CPUs: %s" % info.get("NCPU"),
        " Total Memory: %s" % fmt.human_size(info.get("MemTotal") or 0),
        " Name: %s" % info.get("Name"),
        " ID: %s" % info.get("ID"),
        " Docker Root Dir: %s" % info.get("DockerRootDir"),
        " Debug Mode: %s" % str(bool(info.get("Debug"))).lower(),
        " Live Restore Enabled: %s" % str(bool(info.get("LiveRestoreEnabled"))).lower(),
    ]
    insecure = [k for k, v in (reg.get("IndexConfigs") or {}).items() if not v.get("Secure")]
    insecure += reg.get("InsecureRegistryCIDRs") or []
    if insecure:
        lines.append(" Insecure Registries:")
        lines += ["  %s" % i for i in insecure]
    if reg.get("Mirrors"):
        lines.append(" Registry Mirrors:")
        lines += ["  %s" % m for m in reg["Mirrors"]]
    for warning in info.get("Warnings") or []:
        lines.append(warning)
    print("\n".join(lines))
    return 0


def parser_check(p):
    """Flags of `berth system check`."""
    p.add_argument("--quick", action="store_true",
                   help="skip re-hashing blobs and walking layers (what berthd checks at start)")
    p.add_argument("-f", "--format", help="'json' for the raw report")


def cmd_check(client, args):
    """The data root's findings, one line each with its fix; exit 1 when any needs doing."""
    report = client.get("/berth/check", {"quick": "1"} if args.quick else None)
    if args.format == "json":
        print(json.dumps(report))
    else:
        for f in report.get("Findings") or []:
            print("%s %s: %s; fix: %s [%s]" % (f["Area"], f["Subject"], f["Problem"], f["Fix"],
                                               f["Repair"]))
        print("%d problem(s), %d leftover(s) of interrupted operations" % (
            report.get("Problems", 0), report.get("Partial", 0)))
    return 1 if report.get("Problems") else 0


def parser_version(p):
    """Flags of `berth version`."""
    p.add_argument("-f", "--format", help="'json' for the raw object")


def cmd_version(client, args):
    """Client and server versions."""
    client_lines = ["Client:", " Version:           %s" % __version__,
                    " API version:       %s" % API_VERSION,
                    " Python version:    %s" % "%d.%d.%d" % sys.version_info[:3],
                    " OS/Arch:           linux/%s" % os.uname().machine]
    try:
        server = client.get("/version")
    except Exception:
        print("\n".join(client_lines))
        raise
    if args.format == "json":
        print(json.dumps({"Client": {"Version": __version__, "ApiVersion": API_VERSION}, "Server": server}))
        return 0
    print("\n".join(client_lines + [
        "", "Server: berth", " Engine:",
        "  Version:          %s" % server.get("Version"),
        "  API version:      %s (minimum version %s)" % (server.get("ApiVersion"),
                                                         server.get("MinAPIVersion")),
        "  Go version:       %s" % server.get("GoVersion"),
        "  Built:            %s" % server.get("BuildTime"),
        "  OS/Arch:          %s/%s" % (server.get("Os"), server.get("Arch")),
        "  Kernel version:   %s" % server.get("KernelVersion"),
    ]))
    return 0


def parser_inspect(p):
    """Flags of `berth inspect`."""
    p.add_argument("--type", choices=("container", "image", "volume"))
    p.add_argument("-f", "--format", help="Go template ({{.State.Status}}, {{json .Config}})")
    p.add_argument("-s", "--size", action="store_true", help="(accepted)")
    p.add_argument("names", nargs="+", metavar="NAME")


def cmd_inspect(client, args):
    """A JSON array: each name as a container, else an image, else a volume."""
    paths = {"container": "/containers/%s/json", "image": "/images/%s/json", "volume": "/volumes/%s"}
    kinds = [args.type] if args.type else ["container", "image", "volume"]
    out, status = [], 0
    for name in args.names:
        for kind in kinds:
            try:
                out.append(client.get(paths[kind] % name))
                break
            except APIError as exc:
                if exc.status != 404:
                    sys.stderr.write("Error response from daemon: %s\n" % exc)
                    status = 1
                    break
        else:
            sys.stderr.write("Error: No such object: %s\n" % name)
            status = 1
    if args.format:
        from runtime.cli import gotemplate
        try:
            tmpl = gotemplate.Template(gotemplate.expand_escapes(args.format))
            sys.stdout.write("".join(tmpl.render(doc) + "\n" for doc in out))
        except ValueError as exc:
            sys.stderr.write("berth: %s\n" % exc)
            return 1
        return status
    print(json.dumps(out, indent=4))
    return status


def parser_login(p):
    """Flags of `berth login`."""
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("server", nargs="?", default="https://index.docker.io/v1/")


def cmd_login(client, args):
    """Check credentials through the daemon (`/auth`), then store them (mode 0600)."""
    from runtime.cli import credentials
    user = args.username or input("Username: ")
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = args.password or getpass.getpass("Password: ")
    if not user or not password:
        sys.stderr.write("Error: username and password are required\n")
        return 1
    try:
        result = client.post("/auth", body={"username": user, "password": password,
                                            "serveraddress": args.server}) or {}
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 1
    credentials.save(args.server, user, password, identitytoken=result.get("IdentityToken") or None)
    print(result.get("Status") or "Login Succeeded")
    return 0


def parser_logout(p):
    """Flags of `berth logout`."""
    p.add_argument("server", nargs="?", default="https://index.docker.io/v1/")


def cmd_logout(client, args):
    """Forget the stored credentials of a server."""
    from runtime.cli import credentials
    key = credentials.server_key(args.server)
    if credentials.erase(args.server):
        print("Removing login credentials for %s" % key)
    else:
        print("Not logged in to %s" % key)
    return 0


def parser_events(p):
    """Flags of `berth events`."""
    p.add_argument("--since", help="from this time: unix seconds, RFC 3339, or a duration ago (10m)")
    p.add_argument("--until", help="up to this time (same forms); default: follow for ever")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="key=value (type, container, image, volume, network, label, event)")
    p.add_argument("--format", help="'json' for one JSON object per line")


def when(text):
    # type: (str) -> str
    """--since/--until as the API takes them: a duration (10m, 1h30m, 45s) becomes the time
    that long ago; unix seconds and RFC 3339 go as they are."""
    import re
    import time
    if not text:
        return ""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if parts and "".join(n + u for n, u in parts) == text:
        scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
        return "%.9f" % (time.time() - sum(float(n) * scale[u] for n, u in parts))
    return text


def cmd_events(client, args):
    """`berth events`: the engine's events as they happen (or those of a past range)."""
    import time

    from runtime.cli.opts import filters_arg
    query = {"since": when(args.since), "until": when(args.until), "filters": filters_arg(args.filter)}
    try:
        resp = client.send("GET", "/events", {k: v for k, v in query.items() if v})
        for ev in resp.json_stream():
            if args.format == "json":
                line = json.dumps(ev)
            else:
                nanos = int(ev.get("timeNano") or ev.get("time", 0) * 1000000000)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(nanos // 1000000000))
                offset = time.strftime("%z", time.localtime(nanos // 1000000000))
                actor = ev.get("Actor") or {}
                attrs = ", ".join("%s=%s" % kv for kv in sorted((actor.get("Attributes") or {}).items()))
                line = "%s.%09d%s:%s %s %s %s%s" % (stamp, nanos % 1000000000, offset[:3], offset[3:],
                                                     ev.get("Type"), ev.get("Action"), actor.get("ID"),
                                                     " (%s)" % attrs if attrs else "")
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
