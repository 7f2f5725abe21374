"""Disk use and its cleanup: `system df`, and `container|image|volume|system prune` (with
`-f` and `--filter` as docker takes them)."""

import sys

from runtime import TYPE_CHECKING
from runtime.cli import fmt
from runtime.cli.client import APIError
from runtime.cli.opts import filters_arg

if TYPE_CHECKING:
    from typing import Any, List, Optional  # noqa: F401


def _confirm(what, force):
    # type: (str, bool) -> bool
    if force:
        return True
    sys.stderr.write("WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] " % what)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _prune_flags(p, all_help=None):
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="key=value (until, label, label!)")
    if all_help:
        p.add_argument("-a", "--all", action="store_true", help=all_help)


def _reclaimed(space):
    # type: (int) -> None
    print("\nTotal reclaimed space: %s" % fmt.human_size(space or 0))


def _prune_names(client, what, filters):
    # type: (Any, str, Optional[str]) -> int
    """POST /WHAT/prune for a prune whose answer lists names; print them, return the space."""
    title = what.capitalize()
    result = client.post("/%s/prune" % what, {"filters": filters}) or {}
    deleted = result.get(title + "Deleted") or []
    if deleted:
        print("Deleted %s:" % title)
        sys.stdout.write("".join(d + "\n" for d in deleted))
    return result.get("SpaceReclaimed") or 0


def container_prune(client, filters):
    # type: (Any, Optional[str]) -> int
    return _prune_names(client, "containers", filters)


def image_prune(client, filters):
    # type: (Any, Optional[str]) -> int
    result = client.post("/images/prune", {"filters": filters}) or {}
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for d in deleted:
            for key, value in d.items():
                print("%s: %s" % (key.lower(), value))
    return result.get("SpaceReclaimed") or 0


def volume_prune(client, filters):
    # type: (Any, Optional[str]) -> int
    return _prune_names(client, "volumes", filters)


def _run(what, prune, client, filters, force):
    if not _confirm(what, force):
        return 0
    try:
        _reclaimed(prune(client, filters))
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 1
    return 0


def parser_container_prune(p):
    """Flags of `berth container prune`."""
    _prune_flags(p)


def cmd_container_prune(client, args):
    """Remove stopped containers."""
    return _run("all stopped containers", container_prune, client, filters_arg(args.filter), args.force)


def parser_image_prune(p):
    """Flags of `berth image prune`."""
    _prune_flags(p, "all images without a container, not only dangling ones")


def cmd_image_prune(client, args):
    """Remove dangling images (every unused image with -a)."""
    extra = {"dangling": {"false": True}} if args.all else None
    what = "all images without at least one container associated to them" if args.all \
        else "all dangling images"
    return _run(what, image_prune, client, filters_arg(args.filter, extra), args.force)


def parser_volume_prune(p):
    """Flags of `berth volume prune`."""
    _prune_flags(p, "named volumes too, not only anonymous ones")


def cmd_volume_prune(client, args):
    """Remove unused volumes (anonymous ones unless -a)."""
    extra = {"all": {"true": True}} if args.all else None
    return _run("all anonymous local volumes not used by at least one container" if not args.all
                else "all local volumes not used by at least one container",
                volume_prune, client, filters_arg(args.filter, extra), args.force)


def parser_system_prune(p):
    """Flags of `berth system prune`."""
    _prune_flags(p, "all unused images, not only dangling ones")
    p.add_argument("--volumes", action="store_true", help="prune anonymous volumes too")


def cmd_system_prune(client, args):
    """Stopped containers, dangling (or unused, -a) images, and with --volumes the volumes."""
    what = "  - all stopped containers\n" + ("  - all anonymous volumes not used by at least one "
                                               "container\n" if args.volumes else "") + \
        ("  - all images without at least one container associated to them" if args.all
         else "  - all dangling images")
    if not _confirm(":\n" + what, args.force):
        return 0
    filters = filters_arg(args.filter)
    try:
        space = container_prune(client, filters)
        if args.volumes:
            space += volume_prune(client, filters_arg([f for f in args.filter
                                                    if not f.startswith("until")]))
        space += image_prune(client, filters_arg(args.filter, {"dangling": {"false": True}}
                                              if args.all else None))
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 1
    _reclaimed(space)
    return 0


def parser_df(p):
    """Flags of `berth system df`."""
    p.add_argument("-v", "--verbose", action="store_true", help="one line per object")
    p.add_argument("--format", help="Go template, or json")


def cmd_df(client, args):
    """TYPE TOTAL ACTIVE SIZE RECLAIMABLE, as docker system df."""
    df = client.get("/system/df") or {}
    images, containers = df.get("Images") or [], df.get("Containers") or []
    volumes = df.get("Volumes") or []
    img_size = df.get("LayersSize") or 0
    img_active = [i for i in images if i.get("Containers")]
    img_reclaim = img_size - sum(i.get("Size") or 0 for i in img_active)
    ct_size = sum(c.get("SizeRw") or 0 for c in containers)
    ct_active = [c for c in containers if c.get("State") == "running"]
    vol_size = sum((v.get("UsageData") or {}).get("Size") or 0 for v in volumes)
    vol_active = [v for v in volumes if (v.get("UsageData") or {}).get("RefCount")]
    vol_reclaim = sum((v.get("UsageData") or {}).get("Size") or 0 for v in volumes
                      if v not in vol_active)

    def pct(part, whole):
        if not whole:
            return fmt.human_size(part)
        return "%s (%d%%)" % (fmt.human_size(part), int(100 * part / whole))

    rows = [
        {"Type": "Images", "TotalCount": str(len(images)), "Active": str(len(img_active)),
         "Size": fmt.human_size(img_size), "Reclaimable": pct(max(img_reclaim, 0), img_size)},
        {"Type": "Containers", "TotalCount": str(len(containers)), "Active": str(len(ct_active)),
         "Size": fmt.human_size(ct_size),
         "Reclaimable": pct(sum(c.get("SizeRw") or 0 for c in containers if c not in ct_active), ct_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)), "Active": str(len(vol_active)),
         "Size": fmt.human_size(vol_size), "Reclaimable": pct(vol_reclaim, vol_size)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
    ]
    if args.format:
        from runtime.cli import gotemplate
        gotemplate.render_list("{{json .}}" if args.format == "json" else args.format, rows,
                               {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
                                "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}, sys.stdout)
        return 0
    fmt.table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
              [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]] for r in rows])
    return 0
