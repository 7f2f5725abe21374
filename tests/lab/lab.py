"""A lab: a private bridge plus any number of throwaway hosts booted on it.

    lab = Lab()
    h1, h2 = lab.up(2)                    # booted, sshd answering
    h1.ssh("groupadd docker")
    url = lab.serve_dir("/some/repo")     # http://10.247.X.1:PORT, reachable from the hosts
    lab.down()                            # removes everything up made

All state lives in /run/berth-lab/<id>/state.json, so `Lab(id).down()` works from any process.
"""

import concurrent.futures
import functools
import http.server
import os
import pathlib
import re
import secrets
import shutil
import subprocess
import threading
import time

from . import boot, cgroups, net, rootfs
from .host import Host
from .paths import lab_run_dir, lab_var_dir
from .state import State, all_labs, global_lock
from .sysutil import LabError, alive, proc_start_time, run, unmount_under

BOOT_TIMEOUT = 90.0
REQUIRED_TOOLS = ("systemd-nspawn", "ip", "iptables", "nsenter", "ssh", "ssh-keygen", "depmod",
                  "debootstrap")


def check_prerequisites() -> None:
    """Raise LabError naming what is missing to run a lab on this machine."""
    if os.geteuid() != 0:
        raise LabError("the lab boots containers and creates bridges: run as root")
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t)]
    if missing:
        raise LabError(f"missing {', '.join(missing)}: run `bash tests/run.sh` once "
                       "(it apt-installs systemd-container, debootstrap, iptables, kmod ...)")
    if not cgroups.hierarchies():
        raise LabError("no cgroup hierarchy is mounted under /sys/fs/cgroup")


INOTIFY_INSTANCES = pathlib.Path("/proc/sys/fs/inotify/max_user_instances")
MIN_INOTIFY_INSTANCES = 4096


def raise_inotify_limit() -> None:
    """Let many booted systemds coexist: each host takes ~6 inotify instances, all charged to
    root, and the kernel default (128) stops the machine at about 20 hosts across all test runs
    ("Failed to allocate manager object: Too many open files"). A runtime-only kernel knob,
    raised (never lowered) and not persisted."""
    try:
        if int(INOTIFY_INSTANCES.read_text()) < MIN_INOTIFY_INSTANCES:
            INOTIFY_INSTANCES.write_text(f"{MIN_INOTIFY_INSTANCES}\n")
    except OSError as e:
        raise LabError(f"cannot raise {INOTIFY_INSTANCES} to {MIN_INOTIFY_INSTANCES}: {e}") from e


class Lab:
    """A set of throwaway hosts on one private bridge (see module docstring).

    `Lab()` makes a new lab with a unique id; `Lab(lab_id)` attaches to an existing one (for
    example to `down()` a lab that another process brought up).
    """

    def __init__(self, lab_id: "str | None" = None, owned: bool = False):
        if lab_id is not None and not re.fullmatch(r"[a-z0-9]{1,8}", lab_id):
            raise LabError(f"bad lab id {lab_id!r}: use 1-8 lowercase letters or digits")
        self.id = lab_id or secrets.token_hex(3)
        while lab_id is None and lab_run_dir(self.id).exists():
            self.id = secrets.token_hex(3)
        self.state = State(self.id)
        self._procs = {}
        self._servers = []
        self._lock = threading.Lock()
        # owned: this process owns the lab; if it dies without down(), reap_orphans() removes it
        self._owned = owned

    def __repr__(self) -> str:
        return f"<Lab {self.id}>"

    # -- lab-wide resources ------------------------------------------------------------
    @property
    def info(self) -> dict:
        """The recorded state (subnet, bridge, hosts ...)."""
        return self.state.read()

    @property
    def bridge(self) -> str:
        """Name of the lab's bridge on the machine."""
        return net.bridge_name(self.id)

    @property
    def bridge_ip(self) -> str:
        """The machine's own address on the lab bridge (hosts can reach only this)."""
        return net.bridge_ip(self._create()["subnet"])

    @property
    def key(self) -> str:
        """Private key that logs in to every host (as root or tester)."""
        return str(lab_run_dir(self.id) / "id_ed25519")

    def _create(self) -> dict:
        """Create the bridge, firewall, key and cgroup root once; return the state."""
        with self._lock:
            st = self.state.read()
            if st.get("ready"):
                return st
            check_prerequisites()
            raise_inotify_limit()
            with global_lock():
                with self.state.update() as st:
                    if "subnet" not in st:
                        used = {State(i).read().get("subnet") for i in all_labs()}
                        free = sorted(set(range(1, 255)) - used - net.subnets_in_use())
                        if not free:
                            raise LabError("no free 10.247.X.0/24 subnet: run `python -m tests.lab down`")
                        st.update(id=self.id, subnet=free[0], bridge=self.bridge, hosts={},
                                  cgroup_root=cgroups.lab_root(self.id), var=str(lab_var_dir(self.id)),
                                  created=time.time(), next_index=1, firewall=True)
                        if self._owned:
                            st["owner"] = {"pid": os.getpid(), "start": proc_start_time(os.getpid())}
            if not os.path.exists(self.key):
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"berth-lab-{self.id}",
                     "-f", self.key])
            boot.make_shared_keys(str(lab_run_dir(self.id)))
            if not net.link_exists(self.bridge):
                net.create_bridge(self.bridge, st["subnet"])
            if not net.lab_rules(self.id):
                net.add_firewall(self.id, self.bridge, st["subnet"])
            with self.state.update() as st:
                st["ready"] = True
            return st

    # -- hosts -------------------------------------------------------------------------
    def up(self, n: int, nested: bool = False, flavour: str = "debian") -> list:
        """Boot `n` new hosts in parallel; return them once every sshd answers.

        nested=True: ready for a container engine inside (writable cgroup v1 controllers, a
        real-ext4 data dir at /var/lib/berth, @keyring syscalls, all capabilities).
        flavour: "debian" (bookworm) or "el7" (the same system dressed as CentOS 7: os-release,
        yum = dnf, /etc/yum.repos.d/CentOS-Base.repo with dead mirrorlist URLs).
        """
        if flavour not in ("debian", "el7"):
            raise LabError(f"unknown flavour {flavour!r}: use 'debian' or 'el7'")
        st = self._create()
        base = str(rootfs.ensure_base())
        pubkey = pathlib.Path(self.key + ".pub").read_text()
        recs = []
        with self.state.update() as s:
            for _ in range(n):
                i = s["next_index"]
                if i > net.MAX_HOSTS:  # a long session: reuse the lowest index no host holds now
                    taken = {r["index"] for r in s["hosts"].values()}
                    free = [x for x in range(1, net.MAX_HOSTS + 1) if x not in taken]
                    if not free:
                        raise LabError(f"lab {self.id} already has {net.MAX_HOSTS} hosts")
                    i = free[0]
                else:
                    s["next_index"] = i + 1
                name = f"{self.id}-h{i}"
                rec = {"name": name, "index": i, "ip": net.host_ip(st["subnet"], i),
                       "cgroup": f"{st['cgroup_root']}/h{i}", "var": f"{st['var']}/h{i}",
                       "known_hosts": str(lab_run_dir(self.id) / f"{name}.known_hosts"),
                       "log": str(lab_run_dir(self.id) / f"{name}.log"),
                       "nested": nested, "flavour": flavour, "status": "starting", "base": base}
                s["hosts"][name] = rec
                recs.append(rec)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, n)) as pool:
            futures = [pool.submit(self._boot, rec, base, pubkey) for rec in recs]
            errors = [f.exception() for f in futures if f.exception()]
        if errors:
            try:
                self.stop([r["name"] for r in recs])
            except LabError:
                pass  # the boot error below matters more; down() retries the leftovers
            raise LabError(f"lab {self.id}: {len(errors)} of {n} hosts failed to boot: {errors[0]}")
        return [self._host(r) for r in recs]

    def _boot(self, rec: dict, base: str, pubkey: str) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        proc = boot.start(rec, base, self.bridge, pubkey, rec["log"])
        self._procs[rec["name"]] = proc
        self._save(rec)
        rec["leader"] = boot.find_leader(rec, proc, rec["log"], deadline)
        rec["leader_start"] = proc_start_time(rec["leader"])
        self._save(rec)
        boot.wait_ssh(rec, proc, rec["log"], deadline)
        rec["status"] = "up"
        self._save(rec)

    def _save(self, rec: dict) -> None:
        with self.state.update() as s:
            s["hosts"][rec["name"]] = dict(rec)

    def _host(self, rec: dict) -> Host:
        return Host(self.id, rec["name"], rec["ip"], self.key, rec["known_hosts"],
                    rec["var"] + "/upper", str(rootfs.base_path()), rec.get("leader"),
                    rec["flavour"], rec["nested"], rec["var"] + "/data" if rec["nested"] else None,
                    rec["cgroup"])

    def hosts(self) -> list:
        """Every host of this lab that is up (also those booted by another process)."""
        recs = self.info.get("hosts", {}).values()
        return [self._host(r) for r in sorted(recs, key=lambda r: r["index"])
                if r.get("status") == "up" and alive(r["pid"], r["start"])]

    def stop(self, hosts) -> None:
        """Power off and remove the given hosts (Host objects or names), in parallel."""
        names = [h.name if isinstance(h, Host) else h for h in hosts]
        recs = [r for n, r in self.info.get("hosts", {}).items() if n in names]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(recs))) as pool:
            lefts = list(pool.map(lambda r: boot.stop(r, self._procs.pop(r["name"], None)), recs))
        with self.state.update() as s:
            for rec, left in zip(recs, lefts):
                if left:
                    s["hosts"][rec["name"]]["status"] = "leftover"
                else:
                    s["hosts"].pop(rec["name"], None)
        left = [x for lst in lefts for x in lst]
        if left:
            raise LabError(f"lab {self.id}: could not remove {left}")

    # -- serving files to the hosts ----------------------------------------------------
    def serve_dir(self, path) -> str:
        """Serve `path` over HTTP on the bridge address; return the base URL (no trailing /).

        The server runs in a thread of this process until down() (or process exit).
        """
        if not os.path.isdir(path):
            raise LabError(f"serve_dir: {path} is not a directory")
        handler = functools.partial(_QuietHandler, directory=str(path))
        srv = http.server.ThreadingHTTPServer((self.bridge_ip, 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True, name=f"lab-{self.id}-http").start()
        self._servers.append(srv)
        return f"http://{self.bridge_ip}:{srv.server_address[1]}"

    # -- teardown ----------------------------------------------------------------------
    def down(self) -> None:
        """Stop every host and remove the bridge, firewall rules, cgroups, dirs and state.

        Raises LabError listing anything that would not go (the state is then kept, so a
        later down can retry).
        """
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers = []
        st = self.info
        if not st and not lab_run_dir(self.id).exists():
            return
        left = []
        try:
            self.stop(list(st.get("hosts", {})))
        except LabError as e:
            left.append(str(e))
        net.remove_firewall(self.id)
        net.delete_bridge(self.bridge)
        left += cgroups.remove(cgroups.lab_root(self.id))
        var = lab_var_dir(self.id)
        if var.exists():
            unmount_under(var)
            subprocess.run(["rm", "-rf", "--one-file-system", str(var)])
        if net.lab_rules(self.id) or net.link_exists(self.bridge) or var.exists():
            left.append("firewall rules, bridge or var dir")
        if left:
            raise LabError(f"lab {self.id}: down left {left}; "
                           f"retry `python -m tests.lab down --lab {self.id}`")
        shutil.rmtree(lab_run_dir(self.id), ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def reap_orphans() -> list:
    """down() every lab whose owning process (a test session) died without tearing it down.

    Labs from `python -m tests.lab up` have no owner and are left alone. Returns reaped ids.
    """
    reaped = []
    for lab_id in all_labs():
        owner = State(lab_id).read().get("owner")
        if owner and not alive(owner["pid"], owner["start"]):
            try:
                Lab(lab_id).down()
                reaped.append(lab_id)
            except LabError:
                pass  # another session may be reaping it right now; `down` can retry later
    return reaped


def down_all() -> list:
    """down() every lab recorded on this machine; return their ids."""
    ids = all_labs()
    errors = []
    for lab_id in ids:
        try:
            Lab(lab_id).down()
        except LabError as e:
            errors.append(str(e))
    if errors:
        raise LabError("; ".join(errors))
    return ids
