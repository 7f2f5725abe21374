"""berthd while some engine parts are still being written: missing backend methods raise
NotImplementedError (HTTP 500) instead of stopping the daemon from starting. Used by the
fixtures only when runtime.engine.Engine is not complete yet."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from runtime import engine  # noqa: E402
from runtime.daemon.main import main  # noqa: E402

missing = getattr(engine.Engine, "__abstractmethods__", ())
if missing:
    def _stub(name):
        def method(self, *a, **kw):
            raise NotImplementedError(name)
        return method
    engine.Engine = type("Engine", (engine.Engine,), {n: _stub(n) for n in missing})

sys.exit(main(sys.argv[1:]))
