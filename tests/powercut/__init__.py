"""A QEMU (software emulation, TCG) Debian 12 virtual machine for the tests where a real
kernel, a reboot or a power cut is the point: its image is built once and cached outside the
repository, each VM boots a copy-on-write overlay of it and is reached only through a
loopback port forward (the cgroup v2 test boots it too). See docs/lab.md ("The power-cut VM") and
/work/shared/notes/vm.md for the measured costs."""

from .image import VMError, ensure_image
from .machine import VM

__all__ = ["VM", "VMError", "ensure_image"]
