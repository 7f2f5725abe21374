"""`berth stats` and `berth top`: docker's columns and its arithmetic on the stats objects
(CPU % from the cpu and system deltas times the online CPUs; memory without the inactive file
cache)."""

import sys
import time

from runtime.cli.client import APIError
from runtime.units import human_size

COLUMNS = "%-14s %-20s %-8s %-22s %-8s %-20s %-20s %s"


def _binary(n):
    # type: (float) -> str
    """go-units BytesSize: 1.5MiB."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    n = float(n)
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return "%.4g%s" % (n, units[i])


def cpu_percent(prev, cur):
    # type: (dict, dict) -> float
    """docker's calculateCPUPercentUnix over two objects."""
    cpu_delta = cur["cpu_stats"]["cpu_usage"]["total_usage"] - prev["cpu_stats"]["cpu_usage"]["total_usage"]
    sys_delta = cur["cpu_stats"].get("system_cpu_usage", 0) - prev["cpu_stats"].get("system_cpu_usage", 0)
    cpus = cur["cpu_stats"].get("online_cpus") or 1
    if cpu_delta > 0 and sys_delta > 0:
        return cpu_delta / float(sys_delta) * cpus * 100.0
    return 0.0


def memory(stats):
    # type: (dict) -> tuple
    """(usage without the inactive file cache, limit), as docker computes them."""
    mem = stats.get("memory_stats") or {}
    usage = mem.get("usage", 0)
    st = mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in st and st[key] < usage:
            return usage - st[key], mem.get("limit", 0)
    return usage, mem.get("limit", 0)


def row(cid, prev, cur):
    # type: (str, dict, dict) -> str
    usage, limit = memory(cur)
    rx = sum(n.get("rx_bytes", 0) for n in (cur.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (cur.get("networks") or {}).values())
    rd = wr = 0
    for e in (cur.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        if e.get("op", "").lower() == "read":
            rd += e.get("value", 0)
        elif e.get("op", "").lower() == "write":
            wr += e.get("value", 0)
    return COLUMNS % (cid[:12], (cur.get("name") or "").lstrip("/"), "%.2f%%" % cpu_percent(prev, cur),
                      "%s / %s" % (_binary(usage), _binary(limit)),
                      "%.2f%%" % (100.0 * usage / limit if limit else 0.0),
                      "%s / %s" % (human_size(rx), human_size(tx)),
                      "%s / %s" % (human_size(rd), human_size(wr)),
                      (cur.get("pids_stats") or {}).get("current", 0))


def parser_stats(p):
    """Flags of `berth stats`."""
    p.add_argument("--no-stream", action="store_true", help="print one reading and exit")
    p.add_argument("-a", "--all", action="store_true", help="all containers (default: running)")
    p.add_argument("containers", nargs="...", metavar="CONTAINER")


def cmd_stats(client, args):
    """`berth stats`: one line per container, every second (or once with --no-stream)."""
    try:
        names = args.containers or [c["Id"] for c in client.get("/containers/json",
                                                                 {"all": args.all or None})]
        query = {"stream": "false", "one-shot": "true"}
        prev = {n: client.get("/containers/%s/stats" % n, query) for n in names}
        while True:
            time.sleep(1.0)
            cur = {n: client.get("/containers/%s/stats" % n, query) for n in names}
            lines = [COLUMNS % ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                                "BLOCK I/O", "PIDS")]
            lines += [row(cur[n].get("id") or n, prev[n], cur[n]) for n in names]
            if not args.no_stream:
                sys.stdout.write("\x1b[2J\x1b[H")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            if args.no_stream:
                return 0
            prev = cur
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 0


def parser_top(p):
    """Flags of `berth top`."""
    p.add_argument("container")
    p.add_argument("ps_args", nargs="...", help="ps options (default -ef)")


def cmd_top(client, args):
    """`berth top CONTAINER [ps OPTIONS]`."""
    try:
        res = client.get("/containers/%s/top" % args.container,
                         {"ps_args": " ".join(args.ps_args)} if args.ps_args else None)
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 1
    rows = [res.get("Titles") or []] + (res.get("Processes") or [])
    widths = [max(len(str(r[i])) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("   ".join(str(v).ljust(widths[i]) if i < len(r) - 1 else str(v)
                                    for i, v in enumerate(r)).rstrip() + "\n")
    return 0
