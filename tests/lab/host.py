"""A running lab host, as callers see it: address, login, and ways to run commands in it."""

import pathlib
import shlex
import subprocess

from . import cgroups
from .paths import TESTER_PASSWORD, TESTER_USER
from .sysutil import LabError


class Host:
    """One booted lab host.

    Attributes: `name` (also its hostname), `ip`, `user` ("root"), `key` (path of the private
    key that logs in as root and as `tester`), `port` (22), `known_hosts` (a file holding this
    host's keys, for StrictHostKeyChecking=yes), `upper` (its overlay upper dir on the machine:
    every file the host changed), `flavour`, `nested`, `leader` (PID of its systemd, for
    nsenter), `tester`/`tester_password` (a non-root user whose sudo asks for that password).
    """

    port = 22
    user = "root"
    tester = TESTER_USER
    tester_password = TESTER_PASSWORD

    def __init__(self, lab_id: str, name: str, ip: str, key: str, known_hosts: str, upper: str,
                 base: str, leader: int, flavour: str = "debian", nested: bool = False,
                 data: "str | None" = None, cgroup: "str | None" = None):
        self.lab_id, self.name, self.ip, self.key = lab_id, name, ip, key
        self.known_hosts, self.upper, self.base, self.leader = known_hosts, upper, base, leader
        self.flavour, self.nested, self.data = flavour, nested, data
        self.cgroup = cgroup  # relative to each hierarchy root, e.g. berth-lab-<lab>/hN

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.ip} {self.flavour}{' nested' if self.nested else ''}>"

    def as_dict(self) -> dict:
        """What `python -m tests.lab up` prints for this host."""
        return {"name": self.name, "ip": self.ip, "user": self.user, "key": self.key,
                "port": self.port, "lab": self.lab_id, "known_hosts": self.known_hosts,
                "flavour": self.flavour, "nested": self.nested}

    def ssh_options(self) -> list:
        """ssh client options that log in with the lab key and check the host key strictly."""
        return ["-i", self.key, "-p", str(self.port), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]

    def ssh(self, cmd, user: str = "root", check: bool = True, input: "str | None" = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `cmd` (a shell string, or an argv list that gets quoted) over real SSH.

        Returns the CompletedProcess (text stdout/stderr); with check=True a non-zero exit
        raises LabError showing the output.
        """
        if not isinstance(cmd, str):
            cmd = shlex.join(cmd)
        argv = ["ssh", *self.ssh_options(), f"{user}@{self.ip}", cmd]
        return self._run(argv, f"ssh {user}: {cmd!r}", check, input, timeout)

    def exec(self, cmd, check: bool = True, input: "str | None" = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `cmd` as root inside the host without ssh (nsenter into all its namespaces)."""
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        argv = ["nsenter", "-t", str(self.leader), "-a", "--", "/usr/bin/env", "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                *cmd]
        # join the host's cgroups first, so what runs is inside the host's cgroup namespace
        # root (a daemon started this way sees "/" in /proc/self/cgroup, as under ssh)
        enter = "".join(f"echo $$ > {shlex.quote(str(f))} 2>/dev/null; " for f in self._cgroup_procs())
        argv = ["/bin/sh", "-c", enter + 'exec "$@"', "sh", *argv]
        return self._run(argv, f"exec {cmd!r}", check, input, timeout)

    def _run(self, argv, what: str, check: bool, input, timeout: float) -> subprocess.CompletedProcess:
        """Run argv on the machine; with check, a non-zero exit raises LabError naming `what`."""
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise LabError(f"{self.name}: {what} exited {p.returncode}\n"
                           f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
        return p

    def _cgroup_procs(self) -> list:
        if not self.cgroup:
            return []
        found = []
        for h in cgroups.hierarchies():
            d = h / self.cgroup
            if (d / "payload").is_dir():  # nspawn's split: the host's own tree is payload/
                d = d / "payload"
            if d.is_dir():
                found.append(d / "cgroup.procs")
        return found

    def root_path(self, p: str) -> pathlib.Path:
        """Machine-side path of `p` as the host sees it (through its mount namespace)."""
        return pathlib.Path(f"/proc/{self.leader}/root") / p.lstrip("/")

    def upper_path(self, p: str) -> pathlib.Path:
        """Machine-side path of `p` in the host's upper dir (exists only if the host changed it)."""
        return pathlib.Path(self.upper) / p.lstrip("/")
