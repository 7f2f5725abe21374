"""The `berth` commands that run most often (run, ps, images, pull) load none of the stdlib
modules that dominate a short command's start-up (typing, re, os, json, socket, argparse...):
checked in a fresh `python -I -S`, as the installed wrapper runs the CLI, on this python and on
Python 3.6 when it is here (docs: README "CLI reference: berth" on the CLI's start-up)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY36 = "/root/.pyenv/versions/3.6.15/bin/python3.6"
HEAVY = ("typing", "re", "os", "json", "socket", "argparse", "http", "subprocess", "functools",
         "collections", "enum", "threading")
COMMANDS = {"run": "run", "ps": "containers", "images": "images", "pull": "images"}


def _loaded(python, module):
    code = ("import sys; sys.path.insert(0, %r); before = set(sys.modules); "
            "import runtime.cli.main, runtime.cli.%s; "
            "print(' '.join(sorted(set(sys.modules) - before)))" % (ROOT, module))
    out = subprocess.run([python, "-I", "-S", "-c", code], stdout=subprocess.PIPE, check=True)
    return out.stdout.decode().split()


@pytest.mark.parametrize("python", [sys.executable, PY36], ids=["this python", "python3.6"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_hot_commands_load_no_heavy_stdlib_module(python, command):
    if not os.path.exists(python):
        pytest.skip("no %s here" % python)
    loaded = _loaded(python, COMMANDS[command])
    assert "runtime.cli." + COMMANDS[command] in loaded
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []
