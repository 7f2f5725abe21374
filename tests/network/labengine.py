"""berthd on a lab host (docs/lab.md) for the networking tests: the engine copied from this
checkout and started as a transient systemd unit, busybox loaded, and Debian's firewalld
installed from .debs fetched once on the machine (the hosts have no way out)."""

import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess

from tests import imagefactory
from tests.lab import rootfs

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEB_CACHE = pathlib.Path("/var/cache/berth-lab/debs")
BERTHD = """#!/bin/sh
PYTHONPATH=/opt/berth exec python3 -m runtime.daemon.main "$@"
"""
BERTH = """#!/bin/sh
PYTHONPATH=/opt/berth exec python3 -m runtime.cli.main "$@"
"""


def package_debs(package):
    """The .debs a lab host lacks to install `package` (what apt-get would install into the
    lab's base rootfs, from the machine's apt mirror), downloaded once into a cache dir."""
    base = rootfs.ensure_base()
    status = str(base / "var/lib/dpkg/status")
    sim = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", "-o",
                          "Dir::State::status=" + status, package], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=True).stdout.decode()
    wanted = sorted("%s=%s" % (line.split()[1], line.split()[2].strip("("))
                    for line in sim.splitlines() if line.startswith("Inst "))
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:12]
    dest = DEB_CACHE / ("%s-%s" % (package, key))
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    with open(DEB_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / ".complete").exists():
            tmp = DEB_CACHE / (".tmp-" + dest.name)
            shutil.rmtree(str(tmp), ignore_errors=True)
            tmp.mkdir()
            subprocess.run(["apt-get", "download"] + wanted, cwd=str(tmp), check=True,
                           stdout=subprocess.DEVNULL)
            (tmp / ".complete").write_text("\n".join(wanted) + "\n")
            shutil.rmtree(str(dest), ignore_errors=True)
            os.rename(str(tmp), str(dest))
    return sorted(dest.glob("*.deb"))


def install_debs(host, debs, start=True):
    """dpkg -i the .debs on the host. Their postinst scripts start their services unless start
    is False (a policy-rc.d that denies it, for the time of the install: the units are enabled,
    not started, so that the caller can configure them before their first start)."""
    d = host.root_path("/root/debs")
    d.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy2(str(deb), str(d / deb.name))
    deny = "" if start else ("printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && "
                             "chmod +x /usr/sbin/policy-rc.d && ")
    host.exec(deny + "DEBIAN_FRONTEND=noninteractive dpkg -i /root/debs/*.deb >/root/debs/dpkg.log 2>&1; "
              "rc=$?; rm -f /usr/sbin/policy-rc.d; "
              "[ $rc = 0 ] || { tail -30 /root/debs/dpkg.log; exit 1; }", timeout=600)


def start_berthd(host, tmp, config=None):
    """This checkout's engine on the host as unit berthd-lab (data root /var/lib/berth, the
    nested host's real-disk dir), busybox loaded."""
    opt = host.root_path("/opt/berth")
    shutil.rmtree(str(opt / "runtime"), ignore_errors=True)
    shutil.copytree(str(ROOT / "runtime"), str(opt / "runtime"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in (("berthd", BERTHD), ("berth", BERTH)):
        path = host.root_path("/usr/local/bin/" + name)
        path.write_text(text)
        path.chmod(0o755)
    host.root_path("/etc/berth").mkdir(exist_ok=True)
    import json
    host.root_path("/etc/berth/lab-daemon.json").write_text(json.dumps(config or {}))
    host.exec("systemd-run --unit=berthd-lab -p KillMode=process -p Delegate=yes /usr/local/bin/berthd "
              "--config-file /etc/berth/lab-daemon.json --data-root /var/lib/berth "
              "-H unix:///run/berth.sock --group root")
    host.exec("for i in $(seq 150); do berth version >/dev/null 2>&1 && exit 0; sleep 0.2; done; "
              "journalctl -u berthd-lab --no-pager | tail -20; exit 1")
    tar = imagefactory.busybox_image_tar(pathlib.Path(str(tmp)) / "busybox.tar")
    shutil.copy2(str(tar), str(host.root_path("/root/busybox.tar")))
    host.exec("berth load -i /root/busybox.tar")


def stop_berthd(host):
    """Remove every container and network, then stop the unit."""
    host.exec("berth rm -f $(berth ps -aq) 2>/dev/null; berth network prune -f; "
              "systemctl stop berthd-lab", check=False)
