"""Booting and stopping one host: systemd-nspawn from its own cgroups, sshd polled until it answers."""

import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

from . import cgroups, net, upper
from .sysutil import LabError, alive, proc_start_time, run

NSPAWN_PROPAGATE = "/run/systemd/nspawn/propagate"


def nspawn_argv(name: str, base: str, upper_dir: str, bridge: str, nested: bool,
                data: "str | None") -> list:
    """The systemd-nspawn command line for one host."""
    argv = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", f"--machine={name}",
            "-D", base, f"--overlay={base}:{upper_dir}:/", f"--network-bridge={bridge}",
            "--console=read-only", "--link-journal=no", "--resolv-conf=off", "--timezone=off"]
    if nested:
        argv += [f"--bind={data}:/var/lib/berth", "--system-call-filter=@keyring",
                 "--capability=all"]
    return argv


def host_keys(name: str, shared_dir: str) -> dict:
    """Ssh host keys for one host: {file name: content}.

    ed25519 and ecdsa are fresh for every host. The RSA key is made once per lab (in
    `shared_dir`) and shared by its hosts: an RSA keygen costs ~1 s of CPU, more than a whole
    host boot, and clients (OpenSSH, paramiko) pick ed25519 anyway.
    """
    keys = {}
    with tempfile.TemporaryDirectory(prefix="berth-lab-keys-") as d:
        for t in ("ed25519", "ecdsa"):
            path = os.path.join(d, f"ssh_host_{t}_key")
            run(["ssh-keygen", "-q", "-t", t, "-N", "", "-C", f"root@{name}", "-f", path])
            for suffix in ("", ".pub"):
                keys[f"ssh_host_{t}_key{suffix}"] = pathlib.Path(path + suffix).read_text()
    for suffix in ("", ".pub"):
        keys[f"ssh_host_rsa_key{suffix}"] = pathlib.Path(shared_dir, "ssh_host_rsa_key" + suffix).read_text()
    return keys


def make_shared_keys(shared_dir: str) -> None:
    """Create the lab-wide RSA host key (see host_keys) if it is missing."""
    path = os.path.join(shared_dir, "ssh_host_rsa_key")
    if not os.path.exists(path + ".pub"):
        tmp = path + ".tmp"
        for f in (tmp, tmp + ".pub"):
            if os.path.exists(f):
                os.unlink(f)
        run(["ssh-keygen", "-q", "-t", "rsa", "-N", "", "-C", "root@berth-lab", "-f", tmp])
        os.rename(tmp, path)
        os.rename(tmp + ".pub", path + ".pub")


def start(rec: dict, base: str, bridge: str, pubkey: str, log_path: str) -> subprocess.Popen:
    """Prepare the host's upper dir and start nspawn detached; records pid into `rec`.

    `rec` is the host's state record (name, ip, var, cgroup, nested, flavour, known_hosts).
    """
    var = pathlib.Path(rec["var"])
    up_dir = var / "upper"
    up_dir.mkdir(parents=True)
    data = None
    if rec["nested"]:
        data = var / "data"
        data.mkdir()
    keys = host_keys(rec["name"], os.path.dirname(rec["known_hosts"]))
    upper.prepare(upper.Upper(pathlib.Path(base), up_dir), rec["name"], rec["ip"], pubkey, keys,
                  rec["flavour"], rec["nested"])
    pathlib.Path(rec["known_hosts"]).write_text("".join(
        f"{rec['ip']} {' '.join(v.split()[:2])}\n" for k, v in keys.items() if k.endswith(".pub")))
    cgroups.create(rec["cgroup"])
    net.forget_neighbour(bridge, rec["ip"])
    argv = nspawn_argv(rec["name"], base, str(up_dir), bridge, rec["nested"], data and str(data))
    with open(log_path, "ab") as log:
        p = subprocess.Popen(["/bin/sh", "-c", cgroups.enter_script(rec["cgroup"]) + 'exec "$@"',
                              "sh", *argv], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    rec["pid"] = p.pid
    rec["start"] = proc_start_time(p.pid)
    return p


def find_leader(rec: dict, proc: "subprocess.Popen | None", log_path: str, deadline: float) -> int:
    """PID (on the machine) of the host's PID 1, found by its cgroup; waits for it to appear."""
    while time.monotonic() < deadline:
        _check_running(rec, proc, log_path)
        for pid in cgroups.pids(rec["cgroup"]):
            try:
                status = pathlib.Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = [ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")]
            if nspid and nspid[0][-1] == "1" and len(nspid[0]) > 1:
                return pid
        time.sleep(0.05)
    raise LabError(f"{rec['name']}: no PID 1 appeared; see {log_path}")


def wait_ssh(rec: dict, proc, log_path: str, deadline: float) -> None:
    """Poll the host's sshd until it sends its banner."""
    while time.monotonic() < deadline:
        _check_running(rec, proc, log_path)
        try:
            with socket.create_connection((rec["ip"], 22), timeout=0.5) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise LabError(f"{rec['name']}: sshd on {rec['ip']} did not answer in time; see {log_path}")


def _check_running(rec, proc, log_path):
    if proc is not None and proc.poll() is not None:
        tail = pathlib.Path(log_path).read_text(errors="replace")[-1500:]
        raise LabError(f"{rec['name']}: systemd-nspawn exited {proc.returncode}:\n{tail}")


def stop(rec: dict, proc: "subprocess.Popen | None" = None, timeout: float = 15.0) -> list:
    """Power the host off (SIGTERM to nspawn, SIGKILL after `timeout`) and remove its cgroups
    and dirs. Only the recorded PIDs (checked by start time) are signalled. Returns leftovers."""
    pid, st = rec.get("pid"), rec.get("start")
    if pid and alive(pid, st):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, st, proc, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, st, proc, 5)
    if proc is not None:
        proc.wait()
    elif pid:
        _wait_reaped(pid, 5)
    leader, lst = rec.get("leader"), rec.get("leader_start")
    if leader and alive(leader, lst):
        # nspawn is gone but its payload lives on: killing PID 1 ends the whole pid namespace
        os.kill(leader, signal.SIGKILL)
        _wait_gone(leader, lst, None, 5)
    left = cgroups.remove(rec["cgroup"]) if rec.get("cgroup") else []
    propagate = pathlib.Path(NSPAWN_PROPAGATE, rec["name"])
    if propagate.is_dir():  # nspawn removes it on a clean exit, not after SIGKILL
        try:
            propagate.rmdir()
        except OSError:
            left.append(str(propagate))
    if rec.get("var") and os.path.isdir(rec["var"]):
        subprocess.run(["rm", "-rf", "--one-file-system", rec["var"]])
        if os.path.exists(rec["var"]):
            left.append(rec["var"])
    return left


def _wait_reaped(pid: int, timeout: float) -> None:
    """Wait for a dead orphan to leave /proc (its new parent, PID 1, reaps it)."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)


def _wait_gone(pid, st, proc, timeout) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return True
        if proc is None:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not alive(pid, st):
            return True
        time.sleep(0.05)
    return False
