"""`berth`: the docker-like CLI over the engine's HTTP API (filled in by the daemon/CLI issue)."""

import sys


def main(argv=None):
    # type: (list) -> int
    """Console-script entry point."""
    sys.stderr.write("berth: the CLI is not built yet\n")
    return 125
