"""Code that runs outside berthd: in the forkserver, the per-container monitors, the exec
helpers and the container's PID 1 (before its exec).

The forkserver (`python -I -S`, started by runtime.container.spawner) imports forkserver,
monitor and execproc up front, so every child it forks shares those pages and starts with
nothing else loaded. Rules for every module here (tests/test_child_imports.py checks them):
- import only the stdlib, this package and the leaf helpers runtime.atomicfile,
  runtime.framing and runtime.timefmt; never the daemon side (runtime.container.* outside
  proc, runtime.services, runtime.api, runtime.store...);
- never import threading or subprocess: the forkserver forks, and their at-fork handlers
  and locks would cost every fork and could deadlock a child.
berthd may import these modules (state reads cgroups, spec reads init's capability names).
"""
