"""The reference engine for isolation tests: `podman run` of a rootfs directory on this
machine, with its own storage under a temp dir. As in bench/container_start.py it runs in a
private mount namespace with /sys/fs/cgroup/unified unmounted (crun refuses the hybrid layout
otherwise) and with explicit ulimits (root here lacks CAP_SYS_RESOURCE)."""

import shutil
import subprocess
import tempfile

ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def available():
    """Whether podman is installed."""
    return bool(shutil.which("podman"))


def run(rootfs, argv, opts=(), timeout=120, expect_output=False):
    """CompletedProcess of `podman run --rm --network none OPTS --rootfs ROOTFS ARGV`.

    expect_output: a run that exits 0 having printed nothing at all is made again (twice at
    most). podman here once lost the whole output of a container that exits at once (a CI
    run: exit 0, empty stdout and stderr, where the same probe prints 13 lines every time)."""
    for _ in range(2):
        r = _run_once(rootfs, argv, opts, timeout)
        if not expect_output or r.returncode != 0 or r.stdout or r.stderr:
            return r
    return _run_once(rootfs, argv, opts, timeout)


def _run_once(rootfs, argv, opts, timeout):
    tmp = tempfile.mkdtemp(prefix="pm", dir="/tmp")  # podman wants a runroot under 50 chars
    base = ["podman", "--root", "%s/s" % tmp, "--runroot", "%s/r" % tmp,
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    cmd = base + ["run", "--rm", "--network", "none"] + ULIMITS + list(opts) + ["--rootfs", str(rootfs)]
    script = ("mount --make-rprivate / && { ! mountpoint -q /sys/fs/cgroup/unified || "
              "umount /sys/fs/cgroup/unified; } && exec \"$@\"")
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh"] + cmd + list(argv),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    finally:
        subprocess.run(["unshare", "-m", "sh", "-c", script, "sh"] + base + ["system", "reset", "-f"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
