"""docs/architecture.md's runtime module map names every module of runtime/ (a module added
without a line there fails here)."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_runtime_module_is_in_the_module_map():
    with open(os.path.join(ROOT, "docs", "architecture.md")) as f:
        doc = f.read()
    runtime_half = doc[doc.index("## Runtime side"):]
    named = set(re.findall(r"`([a-z0-9_/]+?)(?:\.py)?`", runtime_half))
    named |= {n.rsplit("/", 1)[-1] for n in named}
    missing = []
    for top, dirs, files in os.walk(os.path.join(ROOT, "runtime")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py") and name != "__init__.py" and name[:-3] not in named:
                missing.append(os.path.relpath(os.path.join(top, name), ROOT))
    assert missing == [], "add these to the module map in docs/architecture.md"
