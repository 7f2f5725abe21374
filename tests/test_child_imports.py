"""The forkserver's interpreter (and so every monitor, exec helper and PID 1 it forks) loads no
threading or subprocess, nor anything of the daemon side: checked in a fresh `python -I -S`
that imports what runtime.container.spawner makes the forkserver import (the static rule is
the runtime-child-* contracts in .importlinter; this catches what the stdlib pulls in too)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the modules a child may load besides the stdlib (runtime/container/proc/__init__.py)
ALLOWED = ("runtime", "runtime.container", "runtime.atomicfile", "runtime.framing", "runtime.timefmt")


def _loaded_by_forkserver():
    code = ("import sys, json; sys.path.insert(0, %r); "
            "from runtime.container.proc import forkserver, monitor, execproc; "
            "print(json.dumps(sorted(sys.modules)))" % ROOT)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], stdout=subprocess.PIPE, check=True)
    return json.loads(out.stdout.decode())


def test_forkserver_loads_no_threading_nor_subprocess():
    loaded = _loaded_by_forkserver()
    assert "threading" not in loaded
    assert "subprocess" not in loaded


def test_forkserver_loads_only_child_side_runtime_modules():
    ours = [m for m in _loaded_by_forkserver() if m == "runtime" or m.startswith("runtime.")]
    assert "runtime.container.proc.forkserver" in ours
    stray = [m for m in ours if m not in ALLOWED and not m.startswith("runtime.container.proc")]
    assert stray == []
