"""`docker top`: the host's `ps` (ps_args, default -ef), keeping the lines of the
container's processes (those in its cgroup), as dockerd does."""

import subprocess

from runtime.errors import BerthError, InvalidParameter


def top(pids, ps_args="-ef"):
    # type: (set, str) -> dict
    """{"Titles": [...], "Processes": [[...], ...]} for the processes in pids."""
    argv = ["ps"] + (ps_args or "-ef").split()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise BerthError("cannot run ps for top: %s (install procps)" % e) from None
    out, err = p.communicate()
    if p.returncode != 0:
        said = err.decode("utf-8", "replace").strip().splitlines()
        raise InvalidParameter("ps %s failed: %s" % (ps_args, said[-1] if said else "exit %d" % p.returncode))
    lines = out.decode("utf-8", "replace").splitlines()
    if not lines:
        raise InvalidParameter("ps %s printed nothing" % ps_args)
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidParameter("Couldn't find PID field in ps output (ps_args %r)" % ps_args)
    at = titles.index("PID")
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= at:
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            continue
        if pid in pids:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}
