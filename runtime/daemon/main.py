"""`berthd`: the engine daemon (filled in by the daemon/CLI issue)."""

import sys


def main(argv=None):
    # type: (list) -> int
    """Console-script entry point."""
    sys.stderr.write("berthd: the daemon is not built yet\n")
    return 1
