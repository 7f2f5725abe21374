"""`berth volume create|ls|inspect|rm|prune`."""

import sys

from runtime.cli import fmt
from runtime.cli import jsonfast as json
from runtime.cli.client import APIError


def _err(exc):
    sys.stderr.write("Error response from daemon: %s\n" % exc)
    return 1


def parser_create(p):
    """Flags of `berth volume create`."""
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("name", nargs="?")


def cmd_create(client, args):
    """Create a volume, print its name."""
    body = {"Name": args.name or "", "Driver": args.driver,
            "DriverOpts": dict(o.partition("=")[::2] for o in args.opt),
            "Labels": dict(label.partition("=")[::2] for label in args.label)}
    try:
        print(client.post("/volumes/create", body=body)["Name"])
    except APIError as exc:
        return _err(exc)
    return 0


def parser_ls(p):
    """Flags of `berth volume ls`."""
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])


def cmd_ls(client, args):
    """DRIVER VOLUME NAME."""
    from runtime.cli.containers import filters_arg
    vols = (client.get("/volumes", {"filters": filters_arg(args.filter)}) or {}).get("Volumes") or []
    if args.quiet:
        sys.stdout.write("".join(v["Name"] + "\n" for v in vols))
        return 0
    fmt.table(["DRIVER", "VOLUME NAME"], [[v.get("Driver") or "local", v["Name"]] for v in vols])
    return 0


def parser_inspect(p):
    """Flags of `berth volume inspect`."""
    p.add_argument("names", nargs="+", metavar="VOLUME")


def cmd_inspect(client, args):
    """A JSON array of Volume objects."""
    out, status = [], 0
    for name in args.names:
        try:
            out.append(client.get("/volumes/%s" % name))
        except APIError as exc:
            status = _err(exc)
    import json as stdjson
    print(stdjson.dumps(out, indent=4))
    return status


def parser_rm(p):
    """Flags of `berth volume rm`."""
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+", metavar="VOLUME")


def cmd_rm(client, args):
    """Remove volumes (409 while in use)."""
    status = 0
    for name in args.names:
        try:
            client.send("DELETE", "/volumes/%s" % name, {"force": args.force}).close()
            print(name)
        except APIError as exc:
            status = _err(exc)
    return status


def parser_prune(p):
    """Flags of `berth volume prune`."""
    p.add_argument("-a", "--all", action="store_true", help="named volumes too, not only anonymous")
    p.add_argument("-f", "--force", action="store_true", help="do not ask")


def cmd_prune(client, args):
    """Remove unused volumes."""
    if not args.force:
        sys.stderr.write("WARNING! This will remove unused volumes. "
                         "Are you sure you want to continue? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    filters = json.dumps({"all": {"true": True}}) if args.all else None
    try:
        result = client.post("/volumes/prune", {"filters": filters}) or {}
    except APIError as exc:
        return _err(exc)
    deleted = result.get("VolumesDeleted") or []
    if deleted:
        print("Deleted Volumes:")
        for name in deleted:
            print(name)
        print("")
    print("Total reclaimed space: %s" % fmt.human_size(result.get("SpaceReclaimed") or 0))
    return 0
