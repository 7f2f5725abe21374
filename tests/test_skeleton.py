"""The skeleton: packages import, console scripts are installed, runtime stays off provision."""

import ast
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_console_scripts_installed():
    for name in ("provision", "berth", "berthd"):
        assert shutil.which(name), f"{name} is not on PATH; install with pip install -e ."


def test_provision_cli_answers():
    out = subprocess.run(["provision", "--help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert "container host" in out


def test_runtime_never_imports_provision():
    offenders = []
    for path in (ROOT / "runtime").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "provision"]
    assert offenders == []
