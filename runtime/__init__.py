"""berth's container engine: image store, containers, volumes, registry client, API and CLI.

Stdlib-only and Python 3.6 compatible (CentOS 7 ships python3 3.6.8). Never imports `provision`.
"""

__version__ = "0.1.0"
