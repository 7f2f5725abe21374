"""Real images built inside the tests: rootfs trees, layer tars and image archives.

Nothing here uses berth itself, so the archives are an independent reference: they follow the
`docker save` format (manifest.json + repositories, and the OCI image layout that Docker 25+
puts beside them) and the plain OCI image layout, and skopeo/umoci read them.

Typical use::

    rootfs = busybox_rootfs(tmp / "rootfs")          # /bin/busybox + applet symlinks, /etc/passwd
    busybox_image_tar(tmp / "bb.tar")                # one-layer docker-save tarball, busybox:latest
    layer = layer_tar([("file", "etc/motd", b"hi\\n"), ("whiteout", "bin/vi")])
    docker_archive(tmp / "two.tar", [Image("x:1", [rootfs_tar, layer], cmd=["/bin/sh"])])
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = "/bin/busybox"
EPOCH = 1700000000  # fixed mtime: archives built twice are byte-identical
DEBOOTSTRAP_CACHE = Path("/var/cache/berth-test/bookworm-minbase")
LAB_CACHE = Path("/var/cache/berth-lab")

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def sha256(data):
    """`sha256:<hex>` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- rootfs trees

def busybox_rootfs(dest):
    """A minimal rootfs in `dest` from Debian's busybox-static: /bin/busybox, a symlink per
    applet (/bin/sh, /usr/bin/env, ...), /etc/passwd and /etc/group with root and nobody,
    /tmp (1777), /root and empty /proc, /sys, /dev mount points. Returns dest as a Path."""
    dest = Path(dest)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "proc", "sys",
              "dev", "tmp"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    shutil.copy2(BUSYBOX, dest / "bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], stdout=subprocess.PIPE, check=True)
    for rel in applets.stdout.decode().split():
        link = dest / rel
        if rel == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (dest / "etc/group").write_text("root:x:0:\nnobody:x:65534:\n")
    (dest / "etc/hostname").write_text("busybox\n")
    return dest


def cached_debootstrap_rootfs():
    """The cached debootstrap rootfs (lab cache or ours) if one is complete, else None."""
    for cand in sorted(LAB_CACHE.glob("*bookworm*")) if LAB_CACHE.is_dir() else []:
        if (cand / ".berth-lab-complete").exists() and (cand / "etc/debian_version").exists():
            return cand
    if (DEBOOTSTRAP_CACHE / "etc/debian_version").exists():
        return DEBOOTSTRAP_CACHE
    return None


def debootstrap_rootfs(mirror=None):
    """A Debian bookworm minbase rootfs (about 200 MB, 6,800 files), built once with debootstrap
    and cached under /var/cache/berth-test (a lab cache in /var/cache/berth-lab is reused
    read-only when present). Slow the first time (minutes): callers mark themselves slow."""
    cached = cached_debootstrap_rootfs()
    if cached:
        return cached
    mirror = mirror or _apt_mirror()
    tmp = DEBOOTSTRAP_CACHE.with_name(DEBOOTSTRAP_CACHE.name + ".tmp.%d" % os.getpid())
    tmp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(tmp), mirror], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        os.rename(tmp, DEBOOTSTRAP_CACHE)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return DEBOOTSTRAP_CACHE


def _apt_mirror():
    for f in Path("/etc/apt").glob("sources.list*"):
        for p in [f] if f.is_file() else f.glob("*"):
            for line in p.read_text().splitlines():
                for word in line.split():
                    if word.startswith("http") and "security" not in word:
                        return word
    return "http://deb.debian.org/debian"


# ---------------------------------------------------------------- layer tars

def _info(name, kind=tarfile.REGTYPE, mode=0o644, size=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.mtime = kind, mode, size, EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def layer_tar(entries, fmt=tarfile.PAX_FORMAT):
    """Bytes of a layer tar from entries, in order:
    ("dir", path[, mode]), ("file", path, bytes[, mode]), ("symlink", path, target),
    ("hardlink", path, target), ("whiteout", path) -> `.wh.NAME`, ("opaque", dir) ->
    `dir/.wh..wh..opq`, ("raw", TarInfo, bytes_or_None) for anything else (bad input)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            kind = e[0]
            if kind == "dir":
                tf.addfile(_info(e[1], tarfile.DIRTYPE, e[2] if len(e) > 2 else 0o755))
            elif kind == "file":
                data = e[2]
                tf.addfile(_info(e[1], mode=e[3] if len(e) > 3 else 0o644, size=len(data)),
                           io.BytesIO(data))
            elif kind in ("symlink", "hardlink"):
                ti = _info(e[1], tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE, 0o777)
                ti.linkname = e[2]
                tf.addfile(ti)
            elif kind == "whiteout":
                head, _, base = e[1].rpartition("/")
                tf.addfile(_info((head + "/" if head else "") + ".wh." + base))
            elif kind == "opaque":
                tf.addfile(_info(e[1].rstrip("/") + "/.wh..wh..opq"))
            elif kind == "raw":
                tf.addfile(e[1], io.BytesIO(e[2]) if e[2] is not None else None)
            else:
                raise ValueError("unknown layer entry kind %r" % kind)
    return buf.getvalue()


def tar_dir(src, dest=None):
    """A layer tar of the tree at src (names relative, numeric owners kept, sorted so that the
    same tree gives the same bytes). Returns the bytes, or writes dest and returns its Path."""
    src = Path(src)

    def walk(tf, rel):
        path = src / rel if rel else src
        for name in sorted(os.listdir(path)):
            child = (rel + "/" + name) if rel else name
            ti = tf.gettarinfo(str(src / child), arcname=child)
            ti.uname = ti.gname = ""
            if ti.isreg():
                with open(src / child, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)
            if ti.isdir():
                walk(tf, child)

    out = open(dest, "wb") if dest else io.BytesIO()
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
            walk(tf, "")
        return Path(dest) if dest else out.getvalue()
    finally:
        if dest:
            out.close()


# ---------------------------------------------------------------- image archives

class Image:
    """One image for an archive: refs like "busybox:latest" (may be empty), layers as tar bytes
    or paths of tar files (plain; gzip=True compresses them in the archive), config fields."""

    def __init__(self, refs, layers, cmd=("/bin/sh",), env=("PATH=/usr/local/sbin:/usr/local/bin:"
                 "/usr/sbin:/usr/bin:/sbin:/bin",), entrypoint=None, workdir="", user="",
                 labels=None, volumes=None, exposed_ports=None, gzip=False, arch="amd64",
                 created="2023-11-14T22:13:20Z", healthcheck=None):
        self.refs = [refs] if isinstance(refs, str) else list(refs)
        self.layers = list(layers)
        self.gzip = gzip
        self.arch = arch
        cfg = {"Env": list(env), "Cmd": list(cmd) if cmd else None, "WorkingDir": workdir,
               "User": user, "Labels": labels or None}
        if entrypoint:
            cfg["Entrypoint"] = list(entrypoint)
        if volumes:
            cfg["Volumes"] = {v: {} for v in volumes}
        if exposed_ports:
            cfg["ExposedPorts"] = {p: {} for p in exposed_ports}
        if healthcheck:
            cfg["Healthcheck"] = dict(healthcheck)
        self.container_config = cfg
        self.created = created

    def blobs(self):
        """[(layer bytes as stored, diff_id, media type)] and the config bytes."""
        out = []
        for layer in self.layers:
            raw = Path(layer).read_bytes() if isinstance(layer, (str, Path)) else layer
            diff_id = sha256(raw)
            if self.gzip:
                out.append((gzip.compress(raw, 1, mtime=0), diff_id, LAYER_TAR_GZIP))
            else:
                out.append((raw, diff_id, LAYER_TAR))
        config = {
            "architecture": self.arch, "os": "linux", "created": self.created,
            "config": self.container_config,
            "rootfs": {"type": "layers", "diff_ids": [d for _, d, _ in out]},
            "history": [{"created": self.created, "created_by": "imagefactory layer %d" % i}
                        for i in range(len(out))],
        }
        return out, json.dumps(config, sort_keys=True).encode()


def _add(tf, name, data):
    ti = _info(name, size=len(data))
    tf.addfile(ti, io.BytesIO(data))


def _add_dir(tf, name):
    tf.addfile(_info(name, tarfile.DIRTYPE, 0o755))


def _oci_manifest(img):
    layers, config = img.blobs()
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": mt, "digest": sha256(b), "size": len(b)} for b, _, mt in layers],
    }
    return layers, config, json.dumps(manifest, sort_keys=True).encode()


def _write_oci(tf, images, written):
    """Blobs, oci-layout and index.json for images; returns per image (manifest, layers, config)."""
    _add(tf, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    _add_dir(tf, "blobs")
    _add_dir(tf, "blobs/sha256")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    result = []
    for img in images:
        layers, config, manifest = _oci_manifest(img)
        for data in [b for b, _, _ in layers] + [config, manifest]:
            d = sha256(data)
            if d not in written:
                written.add(d)
                _add(tf, "blobs/sha256/" + d[7:], data)
        desc = {"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
                "platform": {"architecture": img.arch, "os": "linux"}}
        for ref in img.refs or [None]:
            one = dict(desc)
            if ref:
                name = ref if "/" in ref.split(":")[0] else "docker.io/library/" + ref
                one["annotations"] = {"io.containerd.image.name": name,
                                      "org.opencontainers.image.ref.name": ref.rpartition(":")[2]}
            index["manifests"].append(one)
        result.append((manifest, layers, config))
    _add(tf, "index.json", json.dumps(index, sort_keys=True).encode())
    return result


def docker_archive(path, images, legacy=False):
    """Write a `docker save` tarball of images to path: Docker 25+ layout (OCI blobs, index.json,
    oci-layout, plus manifest.json and repositories) or, with legacy=True, the pre-25 layout
    (<id>/layer.tar, <id>/json, VERSION, <config hex>.json)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        entries, repos = [], {}
        if legacy:
            written = set()
            for img in images:
                layers, config = img.blobs()
                names, parent = [], ""
                for data, diff_id, _ in layers:
                    lid = hashlib.sha256((parent + diff_id).encode()).hexdigest()
                    if lid not in written:
                        written.add(lid)
                        _add_dir(tf, lid)
                        _add(tf, lid + "/VERSION", b"1.0")
                        _add(tf, lid + "/json", json.dumps({"id": lid, "parent": parent}).encode())
                        _add(tf, lid + "/layer.tar", data)
                    names.append(lid + "/layer.tar")
                    parent = lid
                _add(tf, sha256(config)[7:] + ".json", config)
                entries.append({"Config": sha256(config)[7:] + ".json", "RepoTags": img.refs or None,
                                "Layers": names})
                for ref in img.refs:
                    repo, _, tag = ref.rpartition(":")
                    repos.setdefault(repo, {})[tag] = parent
        else:
            for img, (_, layers, config) in zip(images, _write_oci(tf, images, set())):
                entries.append({"Config": "blobs/sha256/" + sha256(config)[7:],
                                "RepoTags": img.refs or None,
                                "Layers": ["blobs/sha256/" + sha256(b)[7:] for b, _, _ in layers]})
                for ref in img.refs:
                    repo, _, tag = ref.rpartition(":")
                    repos.setdefault(repo, {})[tag] = sha256(layers[-1][0])[7:]
        _add(tf, "manifest.json", json.dumps(entries).encode())
        if repos:
            _add(tf, "repositories", json.dumps(repos).encode())
    return Path(path)


def oci_layout_tar(path, images):
    """Write an OCI image layout (oci-layout, index.json, blobs/sha256/...) as a tar to path,
    the form `skopeo copy ... oci-archive:` reads."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        _write_oci(tf, images, set())
    return Path(path)


_BUSYBOX_TAR_CACHE = {}


def busybox_layer_tar():
    """Bytes of a one-layer busybox rootfs tar (cached per process)."""
    if "layer" not in _BUSYBOX_TAR_CACHE:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            _BUSYBOX_TAR_CACHE["layer"] = tar_dir(busybox_rootfs(Path(tmp) / "rootfs"))
    return _BUSYBOX_TAR_CACHE["layer"]


def busybox_image_tar(path, ref="busybox:latest", layers=None, legacy=False, gzip=False, **config):
    """A docker-save tarball at path holding one busybox image: its rootfs layer, then `layers`
    (extra layer tars from layer_tar), with config fields (cmd, env, entrypoint, ...)."""
    config.setdefault("cmd", ["sh"])
    img = Image(ref, [busybox_layer_tar()] + list(layers or []), gzip=gzip, **config)
    return docker_archive(path, [img], legacy=legacy)


def debootstrap_image_tar(path, ref="debian:bookworm", paths=(".",), **config):
    """A docker-save tarball at path of the cached (or freshly built) debootstrap rootfs as one
    layer; `paths` limits it to some top-level paths (e.g. ("./etc", "./usr/bin", ...))."""
    rootfs = debootstrap_rootfs()
    layer = Path(str(path) + ".layer.tar")
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C",
                    str(rootfs), "-cf", str(layer)] + list(paths), check=True)
    try:
        config.setdefault("cmd", ["bash"])
        return docker_archive(path, [Image(ref, [layer], **config)])
    finally:
        layer.unlink()


def wait_for(cond, timeout=5.0, step=0.02):
    """Poll cond() until true or timeout; returns its last value."""
    end = time.time() + timeout
    while True:
        value = cond()
        if value or time.time() > end:
            return value
        time.sleep(step)
