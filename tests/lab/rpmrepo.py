"""Stand-in RPM packages and a yum repository for EL-flavoured lab hosts.

    repo = rpmrepo.build_repo(tmp / "el7", [
        rpmrepo.Package("docker-ce", "24.0.7", files={"/usr/bin/dockerd": "#!/bin/sh\n"}),
    ])
    url = lab.serve_dir(repo)                         # http://10.247.X.1:PORT
    host.ssh(f"printf '{rpmrepo.repo_file('lab', url)}' > /etc/yum.repos.d/lab.repo")

Packages are noarch, gzip-compressed (rpm on real CentOS 7 cannot read zstd) and indexed by
createrepo_c; the tree is what a yum/dnf `baseurl=` expects (repodata/ at its top).
"""

import pathlib
import shutil
import subprocess
import tempfile

from .sysutil import LabError, run


class Package:
    """A stand-in RPM: name, version, files {absolute path: text}, optional deps and scripts.

    `mode` maps paths to file modes (default 0755 under */bin/*, else 0644). `provides` and
    `requires` are lists of capability strings; `post` is a %post shell script.
    """

    def __init__(self, name: str, version: str = "1.0", release: str = "1.el7", files=None,
                 provides=(), requires=(), post: str = "", summary: str = "", mode=None):
        self.name, self.version, self.release = name, version, release
        self.files = dict(files or {f"/usr/share/doc/{name}/README": f"{name} stand-in\n"})
        self.provides, self.requires, self.post = list(provides), list(requires), post
        self.summary = summary or f"berth lab stand-in for {name}"
        self.mode = dict(mode or {})

    def spec(self) -> str:
        """The rpm spec text."""
        lines = [f"Name: {self.name}", f"Version: {self.version}", f"Release: {self.release}",
                 f"Summary: {self.summary}", "License: MIT", "BuildArch: noarch"]
        lines += [f"Provides: {p}" for p in self.provides] + [f"Requires: {r}" for r in self.requires]
        lines += ["", "%description", self.summary, "", "%install", "mkdir -p %{buildroot}",
                  "cp -a %{_sourcedir}/root/. %{buildroot}/", ""]
        if self.post:
            lines += ["%post", self.post, ""]
        lines += ["%files"]
        for path in sorted(self.files):
            lines.append(f"%attr({self._mode(path):o},root,root) {path}")
        return "\n".join(lines) + "\n"

    def _mode(self, path: str) -> int:
        return self.mode.get(path, 0o755 if "/bin/" in path else 0o644)


def build_rpm(pkg: Package, outdir) -> pathlib.Path:
    """Build `pkg` with rpmbuild into `outdir`; return the .rpm path."""
    if not shutil.which("rpmbuild"):
        raise LabError("rpmbuild is missing: apt-get install rpm")
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="berth-rpm-") as top:
        topdir = pathlib.Path(top)
        root = topdir / "SOURCES/root"
        for path, text in pkg.files.items():
            f = root / path.lstrip("/")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        spec = topdir / f"{pkg.name}.spec"
        spec.write_text(pkg.spec())
        run(["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {topdir}",
             "--define", "_binary_payload w9.gzdio", "--define", "_build_id_links none",
             "--define", "__os_install_post %{nil}", str(spec)])
        built = list((topdir / "RPMS").rglob("*.rpm"))
        if len(built) != 1:
            raise LabError(f"rpmbuild of {pkg.name} produced {built}")
        dest = outdir / built[0].name
        shutil.move(str(built[0]), dest)
    return dest


def build_repo(repo_dir, packages) -> pathlib.Path:
    """Build every Package into `repo_dir`/Packages and index it with createrepo_c."""
    if not shutil.which("createrepo_c"):
        raise LabError("createrepo_c is missing: apt-get install createrepo-c")
    repo_dir = pathlib.Path(repo_dir)
    for pkg in packages:
        build_rpm(pkg, repo_dir / "Packages")
    subprocess.run(["createrepo_c", "-q", str(repo_dir)], check=True, stdout=subprocess.DEVNULL)
    return repo_dir


def repo_file(repo_id: str, baseurl: str, gpgcheck: bool = False) -> str:
    """A .repo file section pointing yum/dnf at `baseurl`."""
    return (f"[{repo_id}]\nname=berth lab {repo_id}\nbaseurl={baseurl}\nenabled=1\n"
            f"gpgcheck={int(gpgcheck)}\n")
