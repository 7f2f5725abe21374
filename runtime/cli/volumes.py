"""`berth volume create|ls|inspect|rm|prune`."""

import sys

from runtime.cli import fmt
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
    p.add_argument("--format", help="Go template (table ..., {{.Name}}, {{json .}})")


VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                  "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}


def cmd_ls(client, args):
    """DRIVER VOLUME NAME."""
    from runtime.cli.opts import filters_arg
    vols = (client.get("/volumes", {"filters": filters_arg(args.filter)}) or {}).get("Volumes") or []
    if args.format and not args.quiet:
        from runtime.cli import gotemplate
        rows = [{"Name": v["Name"], "Driver": v.get("Driver") or "local", "Scope": v.get("Scope") or "local",
                 "Mountpoint": v.get("Mountpoint") or "", "Links": "N/A", "Size": "N/A",
                 "Labels": ",".join("%s=%s" % kv for kv in sorted((v.get("Labels") or {}).items()))}
                for v in vols]
        try:
            gotemplate.render_list(args.format, rows, VOLUME_HEADERS, sys.stdout)
        except ValueError as exc:
            sys.stderr.write("berth: %s\n" % exc)
            return 1
        return 0
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
    return fmt.inspect_each(client, "/volumes/%s", args.names)


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
