"""`berth network create|ls|inspect|rm|connect|disconnect|prune`."""

import sys

from runtime.cli import fmt
from runtime.cli.client import APIError


def _err(exc):
    sys.stderr.write("Error response from daemon: %s\n" % exc)
    return 1


def _pairs(items):
    return dict(i.partition("=")[::2] for i in items)


def parser_create(p):
    """Flags of `berth network create`."""
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("name")


def cmd_create(client, args):
    """Create a network, print its id."""
    if len(args.subnet) > 1 or len(args.gateway) > len(args.subnet) or len(args.ip_range) > len(args.subnet):
        sys.stderr.write("berth: one --subnet (with at most one --gateway and --ip-range) per network\n")
        return 125
    config = []
    if args.subnet:
        c = {"Subnet": args.subnet[0]}
        if args.gateway:
            c["Gateway"] = args.gateway[0]
        if args.ip_range:
            c["IPRange"] = args.ip_range[0]
        config.append(c)
    body = {"Name": args.name, "Driver": args.driver, "Internal": args.internal,
            "Attachable": args.attachable, "Labels": _pairs(args.label), "Options": _pairs(args.opt),
            "IPAM": {"Driver": "default", "Config": config}, "CheckDuplicate": True}
    try:
        print(client.post("/networks/create", body=body)["Id"])
    except APIError as exc:
        return _err(exc)
    return 0


def parser_ls(p):
    """Flags of `berth network ls`."""
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])


def cmd_ls(client, args):
    """NETWORK ID NAME DRIVER SCOPE."""
    from runtime.cli.opts import filters_arg
    nets = client.get("/networks", {"filters": filters_arg(args.filter)}) or []
    nets.sort(key=lambda n: n["Name"])
    ids = [n["Id"] if args.no_trunc else n["Id"][:12] for n in nets]
    if args.quiet:
        sys.stdout.write("".join(i + "\n" for i in ids))
        return 0
    fmt.table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
              [[i, n["Name"], n["Driver"], n["Scope"]] for i, n in zip(ids, nets)])
    return 0


def parser_inspect(p):
    """Flags of `berth network inspect`."""
    p.add_argument("names", nargs="+", metavar="NETWORK")


def cmd_inspect(client, args):
    """A JSON array of Network objects."""
    return fmt.inspect_each(client, "/networks/%s", args.names)


def parser_rm(p):
    """Flags of `berth network rm`."""
    p.add_argument("-f", "--force", action="store_true", help="no error if the network does not exist")
    p.add_argument("names", nargs="+", metavar="NETWORK")


def cmd_rm(client, args):
    """Remove networks (409 while containers are attached)."""
    status = 0
    for name in args.names:
        try:
            client.send("DELETE", "/networks/%s" % name).close()
            print(name)
        except APIError as exc:
            if not (args.force and exc.status == 404):
                status = _err(exc)
    return status


def parser_connect(p):
    """Flags of `berth network connect`."""
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip")
    p.add_argument("network")
    p.add_argument("container")


def cmd_connect(client, args):
    """Connect a container to a network."""
    ep = {"Aliases": args.alias}
    if args.ip:
        ep["IPAMConfig"] = {"IPv4Address": args.ip}
    try:
        client.post("/networks/%s/connect" % args.network,
                    body={"Container": args.container, "EndpointConfig": ep})
    except APIError as exc:
        return _err(exc)
    return 0


def parser_disconnect(p):
    """Flags of `berth network disconnect`."""
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")


def cmd_disconnect(client, args):
    """Disconnect a container from a network."""
    try:
        client.post("/networks/%s/disconnect" % args.network,
                    body={"Container": args.container, "Force": args.force})
    except APIError as exc:
        return _err(exc)
    return 0


def parser_prune(p):
    """Flags of `berth network prune`."""
    p.add_argument("-f", "--force", action="store_true", help="do not ask")
    p.add_argument("--filter", action="append", default=[])


def cmd_prune(client, args):
    """Remove networks no container uses."""
    from runtime.cli.opts import filters_arg
    if not args.force:
        sys.stderr.write("WARNING! This will remove all custom networks not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    try:
        result = client.post("/networks/prune", {"filters": filters_arg(args.filter)}) or {}
    except APIError as exc:
        return _err(exc)
    deleted = result.get("NetworksDeleted") or []
    if deleted:
        print("Deleted Networks:")
        for name in deleted:
            print(name)
    return 0
