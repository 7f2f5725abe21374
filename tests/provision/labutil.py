"""Helpers for the lab tests: run the real `provision` CLI, build local package repos."""

import concurrent.futures
import gzip
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def provision(*args, env=None, timeout=300, input=None):  # noqa: A002 (subprocess name)
    """Run the `provision` CLI as a user would; returns the CompletedProcess (text)."""
    full_env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", "from provision.cli import main; main()", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        input=input,
        timeout=timeout,
        cwd=ROOT,
        env=full_env,
    )


def provision_json(*args, **kw):
    """Run with --json; returns (returncode, {target: report})."""
    p = provision(*args, "--json", **kw)
    try:
        data = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(
            f"no JSON (rc {p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}"
        ) from None
    return p.returncode, {r["target"]: r for r in data}


def known_hosts(hosts, path):
    """One known_hosts file trusting every given lab host."""
    with open(path, "w") as out:
        for h in hosts:
            out.write(pathlib.Path(h.known_hosts).read_text())
    return str(path)


def ssh_args(hosts, kh):
    """Connection options for provision: the lab key and a known_hosts file for these hosts."""
    return ["-i", hosts[0].key, "--known-hosts", kh, "--timeout", "5"]


def build_apt_repo(root, codename="bookworm"):
    """An empty-but-valid apt mirror (debian + debian-security trees), unsigned: [trusted=yes]."""
    root = pathlib.Path(root)
    for tree, suite in (
        ("debian", codename),
        ("debian", f"{codename}-updates"),
        ("debian-security", f"{codename}-security"),
    ):
        dist = root / tree / "dists" / suite
        pk = dist / "main" / "binary-amd64"
        pk.mkdir(parents=True, exist_ok=True)
        (pk / "Packages").write_bytes(b"")
        (pk / "Packages.gz").write_bytes(gzip.compress(b""))
        lines = []
        for rel in ("main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"):
            data = (dist / rel).read_bytes()
            lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {rel}")
        (dist / "Release").write_text(
            f"Origin: berth-test\nSuite: {suite}\nCodename: {suite}\nArchitectures: amd64\nComponents: main\n"
            f"Date: Sat, 28 Nov 2026 00:00:00 UTC\nSHA256:\n" + "\n".join(lines) + "\n"
        )
    return root


def build_rpm(outdir, name, version="1.0", release="1.el7"):
    """An empty noarch stand-in RPM built with rpmbuild; returns its path."""
    with tempfile.TemporaryDirectory() as top:
        spec = pathlib.Path(top) / f"{name}.spec"
        spec.write_text(
            f"Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: berth test stand-in\n"
            f"License: MIT\nBuildArch: noarch\n%description\nstand-in package for tests\n%files\n"
        )
        subprocess.run(
            ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", str(spec)],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        rpm = next(pathlib.Path(top, "RPMS", "noarch").glob("*.rpm"))
        dest = pathlib.Path(outdir) / rpm.name
        dest.write_bytes(rpm.read_bytes())
    return dest


def build_el7_mirror(root, packages=()):
    """A mirror laid out like the public ones: centos-vault/7.9.2009/{os,updates,extras}/x86_64 and
    docker-ce/linux/centos/7/x86_64/stable, indexed with createrepo_c; packages go into os/."""
    root = pathlib.Path(root)
    dirs = [root / "centos-vault/7.9.2009" / r / "x86_64" for r in ("os", "updates", "extras")]
    dirs.append(root / "docker-ce/linux/centos/7/x86_64/stable")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for name in packages:
        build_rpm(dirs[0], name)
    build_rpm(dirs[3], "docker-ce-standin")
    for d in dirs:
        subprocess.run(
            ["createrepo_c", "-q", str(d)], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    return root


# what an EL7 host lacks for berth's engine (the el7 flavour is Debian underneath): stand-in RPMs
EL7_ENGINE_PACKAGES = ["python3", "iptables", "iproute", "util-linux", "tar"]


def up_both_families(plab, n, tmp):
    """n fresh nested Debian hosts and n EL7-shaped ones (CentOS 7 os-release, yum = dnf),
    booted at once while one mirror for both families is built (an apt tree, and a
    CentOS-vault-shaped tree whose stand-in RPMs real dnf installs); (Debian hosts + EL7 hosts,
    the mirror's URL on the lab bridge)."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        deb = pool.submit(plab.up, n, nested=True)
        el7 = pool.submit(plab.up, n, nested=True, flavour="el7")
        mirror = build_apt_repo(pathlib.Path(tmp) / "mirror")
        build_el7_mirror(mirror, packages=EL7_ENGINE_PACKAGES)
        hosts = deb.result() + el7.result()
    return hosts, plab.serve_dir(str(mirror))
