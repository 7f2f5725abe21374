"""`berth update`: docker's flags for the resource limits and restart policy of containers,
running or stopped (the daemon applies them to a running container's cgroup at once)."""

import sys

from runtime.cli.client import APIError

# flag -> (UpdateConfig field, kind): "bytes" (64m), "int", "str"
FLAGS = (("--blkio-weight", "BlkioWeight", "int", "block IO weight (10 to 1000)"),
         ("--cpu-period", "CpuPeriod", "int", "CPU CFS period in microseconds"),
         ("--cpu-quota", "CpuQuota", "int", "CPU CFS quota in microseconds"),
         ("--cpu-rt-period", "CpuRealtimePeriod", "int", "(refused: no real-time CPU budget)"),
         ("--cpu-rt-runtime", "CpuRealtimeRuntime", "int", "(refused: no real-time CPU budget)"),
         ("--cpu-shares", "CpuShares", "int", "relative CPU weight"),
         ("--cpus", "NanoCpus", "cpus", "number of CPUs, e.g. 0.5"),
         ("--cpuset-cpus", "CpusetCpus", "str", "CPUs to run on, e.g. 0-1 or 0,2"),
         ("--cpuset-mems", "CpusetMems", "str", "memory nodes to use, e.g. 0"),
         ("--kernel-memory", "KernelMemory", "bytes", "(refused: kernel memory limits are gone)"),
         ("--memory", "Memory", "bytes", "memory limit, e.g. 64m"),
         ("--memory-reservation", "MemoryReservation", "bytes", "memory soft limit, e.g. 32m"),
         ("--memory-swap", "MemorySwap", "swap", "memory plus swap limit (-1: unlimited swap)"),
         ("--pids-limit", "PidsLimit", "int", "maximum number of processes (-1: unlimited)"))


def parser_update(p):
    """Flags of `berth update`."""
    for flag, _, _, helptext in FLAGS:
        short = {"--cpu-shares": "-c", "--memory": "-m"}.get(flag)
        p.add_argument(*([short, flag] if short else [flag]), help=helptext)
    p.add_argument("--restart", help="restart policy: no, always, unless-stopped, on-failure[:N]")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def body(args):
    # type: (object) -> dict
    """The UpdateConfig the flags ask for; UsageError for a value that is not one."""
    from runtime.cli.run import UsageError, parse_bytes, restart_policy
    out = {}
    for flag, field, kind, _ in FLAGS:
        text = getattr(args, flag[2:].replace("-", "_"))
        if text is None:
            continue
        try:
            if kind == "bytes":
                out[field] = parse_bytes(text)
            elif kind == "swap":
                out[field] = -1 if text.strip() == "-1" else parse_bytes(text)
            elif kind == "int":
                out[field] = int(text)
            elif kind == "cpus":
                out[field] = int(round(float(text) * 1e9))
            else:
                out[field] = text
        except ValueError:
            raise UsageError("invalid argument %r for %s: a number is expected" % (text, flag)) from None
    if args.restart:
        out["RestartPolicy"] = restart_policy(args.restart)
    return out


def cmd_update(client, args):
    """`berth update [FLAGS] CONTAINER...`: prints each container updated, as docker does."""
    from runtime.cli.run import UsageError
    try:
        update = body(args)
    except UsageError as exc:
        sys.stderr.write("berth: %s\n" % exc)
        return 125
    if not update:
        sys.stderr.write("berth: you must provide one or more flags when using this command "
                         "(e.g. --memory 64m or --restart always)\n")
        return 125
    status = 0
    for name in args.containers:
        try:
            reply = client.post("/containers/%s/update" % name, body=update) or {}
            for warning in reply.get("Warnings") or []:
                sys.stderr.write("WARNING: %s\n" % warning)
            print(name)
        except APIError as exc:
            sys.stderr.write("Error response from daemon: %s\n" % exc)
            status = 1
    return status
