"""Machine names in Go's (and OCI's) spelling: x86_64 -> amd64, aarch64 -> arm64."""

import os

# uname -m (and the Go names themselves) -> (GOARCH, the variant the name itself implies)
_ARCH = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", ""),
         "arm64": ("arm64", ""), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
         "i686": ("386", ""), "i386": ("386", ""), "ppc64le": ("ppc64le", ""),
         "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


def arch_variant(machine):
    # type: (str) -> tuple
    """(GOARCH, variant) of a machine name such as `uname -m` gives; unknown names pass
    through with no variant."""
    machine = machine.lower()
    return _ARCH.get(machine, (machine, ""))


def goarch():
    # type: () -> str
    """This machine's architecture: "amd64", "arm64", "arm", ..."""
    return arch_variant(os.uname().machine)[0]  # (platform.machine(), without importing platform)
