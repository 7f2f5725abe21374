"""Where the lab keeps things on the machine, and the constants every part shares."""

import os
import pathlib

#: The cached base rootfs (built once by debootstrap, shared read-only by every host).
CACHE_DIR = pathlib.Path(os.environ.get("BERTH_LAB_CACHE", "/var/cache/berth-lab"))
#: Per-lab runtime state: state.json, ssh keys, known_hosts, the subnet allocation lock.
RUN_DIR = pathlib.Path(os.environ.get("BERTH_LAB_RUN", "/run/berth-lab"))
#: Per-host writable dirs on real disk: the overlay upper dir and the nested data dir.
VAR_DIR = pathlib.Path(os.environ.get("BERTH_LAB_VAR", "/var/tmp/berth-lab"))

SUITE = "bookworm"
#: Password of the non-root user `tester` (sudo needs it).
TESTER_USER = "tester"
TESTER_PASSWORD = "berth-tester"
#: The test address range: 10.247.X.0/24, X allocated per lab.
SUBNET_PREFIX = "10.247"


def lab_run_dir(lab_id: str) -> pathlib.Path:
    """The state dir of one lab (state.json, keys)."""
    return RUN_DIR / lab_id


def lab_var_dir(lab_id: str) -> pathlib.Path:
    """The on-disk dir holding every host's upper and data dirs of one lab."""
    return VAR_DIR / lab_id
