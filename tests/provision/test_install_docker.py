"""`--engine docker` on a Debian lab host, air-gapped the way a user without internet would do
it: docker.io and the packages it needs that the host lacks are `apt-get download`ed on the
machine, indexed as a local apt repository (dpkg-scanpackages), served on the lab bridge and
given to provision as its package mirror. The same offline proof then passes with the docker
CLI, a rerun changes nothing, and `provision status` reports dockerd."""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from tests.lab import rootfs
from tests.provision.labutil import build_apt_repo, known_hosts, provision, provision_json, ssh_args

pytestmark = pytest.mark.lab

CACHE = pathlib.Path("/var/cache/berth-test/docker-debs")


def _run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True, **kw)


def docker_debs() -> pathlib.Path:
    """docker.io + every package of its dependency tree the lab base lacks (downloaded once)."""
    marker = CACHE / ".complete"
    if marker.exists():
        return CACHE
    base = rootfs.ensure_base()
    have = set(
        _run(["dpkg-query", f"--admindir={base}/var/lib/dpkg", "-W", "-f", "${Package}\n"]).stdout.split()
    )
    deps = _run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", "docker.io"]
    ).stdout.splitlines()  # fmt: skip
    want = sorted({d for d in deps if d and not d.startswith((" ", "<"))} - have)
    tmp = CACHE.parent / f".dl-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _run(["apt-get", "download", "-q", *want], cwd=tmp)
    shutil.rmtree(CACHE, ignore_errors=True)
    tmp.rename(CACHE)
    marker.write_text("\n".join(want) + "\n")
    return CACHE


def docker_mirror(root: pathlib.Path) -> pathlib.Path:
    """A mirror tree as provision's --mirror expects (debian, debian-security) whose bookworm
    main holds the downloaded packages."""
    build_apt_repo(root)
    deb = root / "debian"
    pool = deb / "pool" / "main"
    pool.mkdir(parents=True)
    for f in docker_debs().glob("*.deb"):
        os.link(f, pool / f.name) if os.stat(f).st_dev == os.stat(pool).st_dev else shutil.copy(f, pool)
    dist = deb / "dists" / "bookworm"
    packages = _run(["dpkg-scanpackages", "--multiversion", "pool", "/dev/null"], cwd=deb).stdout.encode()
    bindir = dist / "main" / "binary-amd64"
    (bindir / "Packages").write_bytes(packages)
    import gzip

    (bindir / "Packages.gz").write_bytes(gzip.compress(packages))
    lines = []
    for rel in ("main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"):
        data = (dist / rel).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {rel}")
    (dist / "Release").write_text(
        "Origin: berth-test\nSuite: bookworm\nCodename: bookworm\nArchitectures: amd64\nComponents: main\n"
        "Date: Sat, 28 Nov 2026 00:00:00 UTC\nSHA256:\n" + "\n".join(lines) + "\n"
    )
    return root


@pytest.fixture
def nested_host(plab):
    """One fresh nested host, removed when the test ends."""
    (h,) = plab.up(1, nested=True)
    yield h
    plab.stop([h])


def test_engine_docker_from_a_local_apt_repo(plab, nested_host, tmp_path):
    h = nested_host
    kh = known_hosts([h], tmp_path / "kh")
    url = plab.serve_dir(str(docker_mirror(tmp_path / "mirror")))
    args = [
        "host",
        f"root@{h.ip}",
        "--engine",
        "docker",
        "--mirror",
        url,
        "--no-gpgcheck",
        "--registry-mirror",
        "https://mirror-d.example.com",
        # the nested host's / is an overlay: docker's overlay2 needs its data on the ext4 bind
        "--daemon-opt",
        "data-root=/var/lib/berth/docker",
        "--user",
        "tester",
        *ssh_args([h], kh),
    ]
    rc, reps = provision_json(*args, timeout=600)
    rep = reps[f"root@{h.ip}"]
    assert rc == 0, json.dumps(rep, indent=1)[-3000:]
    steps = {s["name"]: s for s in rep["steps"]}
    assert any("install" in a and "docker.io" in a for a in steps["docker.io"]["actions"])
    assert "container ran and exited 0" in " ".join(steps["engine verify"]["notes"])
    assert h.exec("systemctl is-active docker; systemctl is-enabled docker").stdout.split() == [
        "active",
        "enabled",
    ]
    assert h.exec("stat -c '%U:%G %a' /var/run/docker.sock").stdout.strip() == "root:docker 660"
    info = json.loads(h.ssh("docker info --format '{{json .}}'", user="tester").stdout)
    assert info["Driver"] == "overlay2"
    assert [m.rstrip("/") for m in info["RegistryConfig"]["Mirrors"]] == ["https://mirror-d.example.com"]
    out = h.ssh("docker run --rm berth-probe:latest echo ok", user="tester", timeout=60)
    assert out.stdout.strip() == "ok"
    pid = h.exec("systemctl show docker -p MainPID").stdout
    rc, reps = provision_json(*args)
    assert rc == 0 and reps[f"root@{h.ip}"]["changed"] == 0, reps
    assert h.exec("systemctl show docker -p MainPID").stdout == pid
    # dockerd refuses an unknown daemon.json key: the step fails, the previous file is put back
    # and dockerd restarted with it
    good = h.exec("cat /etc/docker/daemon.json").stdout
    rc, reps = provision_json(*args, "--daemon-opt", "no-such-key=1")
    rep = reps[f"root@{h.ip}"]
    assert rc == 1 and "put back" in rep["error"] and "running again" in rep["error"], rep["error"]
    assert h.exec("cat /etc/docker/daemon.json").stdout == good
    assert h.exec("systemctl is-active docker").stdout.strip() == "active"
    p = provision("status", h.ip, "--json", *ssh_args([h], kh))
    st = json.loads(p.stdout)[0]
    assert p.returncode == 0 and st["engine"] == "docker" and st["active"] == "active", st
    # uninstall removes the engine packages provision installed and the files it created
    p = provision("uninstall", h.ip, *ssh_args([h], kh), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (
        h.exec("dpkg-query -W -f='${Status}' docker.io", check=False).stdout.strip() != "install ok installed"
    )
    assert h.exec("test -e /etc/docker/daemon.json", check=False).returncode == 1
