"""What a running berthd is doing and holding, written to a file on SIGUSR1 (as dockerd writes
its goroutine stacks): every thread's stack, the resident size, the modules loaded, and, when the
daemon was started with BERTHD_TRACEMALLOC=N in its environment, the largest live allocations by
the N innermost frames that made them (tracemalloc).

    kill -USR1 $(cat /run/berthd.pid)    # -> <data root>/berthd-dump-20261203T021500.log

Tracing from the start is what makes the allocation table useful (the records loaded at start
are most of what berthd holds) and it costs memory and speed, so it is opt-in and read from the
environment rather than daemon.json: it is for a debugging session, not for a service's config.
"""

import os
import sys
import threading
import time
import traceback

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, List, Optional, TextIO  # noqa: F401

ENV = "BERTHD_TRACEMALLOC"
TOP = 40


def trace_from_env(environ=None):
    # type: (Optional[dict]) -> int
    """Start tracemalloc when BERTHD_TRACEMALLOC asks for it (a frame count, 1-100; 0 or unset
    leaves it off). The frame count in force, 0 when not tracing."""
    value = (environ if environ is not None else os.environ).get(ENV, "").strip()
    if not value:
        return 0
    try:
        frames = int(value)
    except ValueError:
        raise ValueError("%s=%r: give the number of frames to keep (1-100), or unset it"
                         % (ENV, value)) from None
    if not 0 <= frames <= 100:
        raise ValueError("%s=%d: give the number of frames to keep (1-100), or unset it"
                         % (ENV, frames))
    if frames:
        import tracemalloc
        tracemalloc.start(frames)
    return frames


def write_threads(out):
    # type: (TextIO) -> None
    """Every thread's name and stack, innermost frame last."""
    names = dict((t.ident, t.name) for t in threading.enumerate())
    for ident, frame in sorted(sys._current_frames().items(), key=lambda kv: names.get(kv[0], "")):
        out.write("thread %s (%d):\n" % (names.get(ident, "?"), ident))
        out.write("".join(traceback.format_stack(frame)))
        out.write("\n")


def write_allocations(out, top=TOP):
    # type: (TextIO, int) -> None
    """The largest live allocations grouped by the traceback that made them, when tracing."""
    import tracemalloc
    if not tracemalloc.is_tracing():
        out.write("allocations: not traced (start berthd with %s=N, N frames, to see them)\n" % ENV)
        return
    sites = _largest_sites(tracemalloc.take_snapshot(), tracemalloc.__file__)
    current, peak = tracemalloc.get_traced_memory()
    out.write("allocations: %d kB live in %d blocks (tracemalloc: %d kB now, %d kB at the peak); "
              "the %d largest sites:\n" % (sum(s[0] for s in sites) // 1024,
                                           sum(s[1] for s in sites), current // 1024,
                                           peak // 1024, top))
    sites.sort(key=lambda s: s[0], reverse=True)
    for size, count, frames in sites[:top]:
        out.write("%8d kB %8d blocks\n" % (size // 1024, count))
        if not isinstance(frames, tracemalloc.Traceback):
            frames = tracemalloc.Traceback(frames)
        for line in frames.format():
            out.write("    %s\n" % line)


def _largest_sites(snapshot, skip_file):
    # type: (Any, str) -> List[list]
    """[size, count, frames] per allocating traceback, those made inside skip_file left out.
    Grouped over the snapshot's raw traces (domain, size, frames innermost first, ...): the
    documented Snapshot.filter_traces and statistics("traceback") take ~12 s over the 300,000
    blocks of a loaded daemon traced 8 frames deep, this ~1 s."""
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is None:  # (a Python whose snapshot keeps them otherwise): the documented way
        import tracemalloc
        stats = snapshot.filter_traces((tracemalloc.Filter(False, skip_file),)).statistics("traceback")
        return [[s.size, s.count, s.traceback] for s in stats]
    sites = {}  # type: dict
    for trace in raw:
        frames = trace[2]
        site = sites.get(frames)
        if site is None:
            sites[frames] = [trace[1], 1, frames]
        else:
            site[0] += trace[1]
            site[1] += 1
    return [s for s in sites.values() if not (s[2] and s[2][0][0] == skip_file)]


def resident_line():
    # type: () -> str
    """VmRSS, RssAnon and RssFile of this process, as /proc/self/status gives them."""
    keep = ("VmRSS:", "RssAnon:", "RssFile:", "Threads:")
    try:
        with open("/proc/self/status") as f:
            return "; ".join(" ".join(line.split()) for line in f if line.startswith(keep))
    except OSError as exc:
        return "resident size unknown (%s)" % exc


def dump(directory, now=None):
    # type: (str, Optional[float]) -> str
    """Write the threads, resident size and allocations to berthd-dump-<UTC time>.log in
    directory (written whole, then renamed into place); its path."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now if now is not None else time.time()))
    path = os.path.join(directory, "berthd-dump-%s.log" % stamp)
    tmp = path + ".tmp"
    with open(tmp, "w") as out:
        out.write("berthd pid %d at %s UTC\n%s\n\n" % (os.getpid(), stamp, resident_line()))
        write_threads(out)
        write_allocations(out)
        out.write("\nmodules (%d): %s\n" % (len(sys.modules), " ".join(sorted(sys.modules))))
    os.rename(tmp, path)
    return path
