"""Helpers for the install tests: the engine as committed (not as others are editing it)."""

import pathlib
import shutil
import subprocess

from tests.provision.labutil import ROOT


def committed_tree(dest, paths=("runtime",)):
    """Copy `paths` as of git HEAD into `dest` (the working tree when this is no git checkout).

    Engineers edit runtime/ in the shared working tree while these tests run; the install
    tests check the engine that is committed, which is what CI sees."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        archive = subprocess.run([git, "-C", str(ROOT), "archive", "HEAD", *paths], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        for p in paths:
            shutil.copytree(ROOT / p, dest / p, ignore=shutil.ignore_patterns("__pycache__"))
    return dest
