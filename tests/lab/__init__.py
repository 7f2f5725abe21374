"""The berth test lab: throwaway Debian hosts (systemd-nspawn) on a private bridge.

See docs/lab.md. Public API: Lab, Host, LabError, down_all.
"""

from .host import Host
from .lab import Lab, down_all
from .sysutil import LabError

__all__ = ["Host", "Lab", "LabError", "down_all"]
