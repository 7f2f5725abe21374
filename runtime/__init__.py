"""berth's container engine: image store, containers, volumes, registry client, API and CLI.

Stdlib-only and Python 3.6 compatible (CentOS 7 ships python3 3.6.8). Never imports `provision`.
"""

__version__ = "0.1.0"

# Type hints are comments (Python 3.6); the names they use come from typing under
# `if TYPE_CHECKING:`, which is False here and True for a type checker (mypy takes any name
# TYPE_CHECKING as true). Importing typing itself costs berthd 0.6 MB and the CLI 4-12 ms a run.
TYPE_CHECKING = False
