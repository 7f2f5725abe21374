"""Write the hostile-input corpus: image archives (and one rootfs tar) that lie, escape or break,
each with what must happen to it, to tests/hostile/corpus/ (or the directory given).

    python -m tests.hostile.make_corpus [DIR]

Every file is the same bytes on every run (fixed times, gzip mtime 0), so the committed corpus
can be compared with a fresh one (tests/hostile/test_corpus.py does). CASES names each file, how
it is fed to the engine (`load` or `import`) and what must happen: `refused` with a substring of
the one-line error, or `accepted` (device nodes and setuid files, as dockerd accepts them).
"""

import gzip
import io
import json
import os
import sys
import tarfile
import tempfile
import zlib

from tests import imagefactory as f

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
# a path outside the data root that a write-through would create (the test checks it is absent)
OUTSIDE = "/tmp/berth-hostile-outside"

BASE = f.layer_tar([("dir", "etc"), ("file", "etc/hostname", b"hostile\n")])


def _raw(name, kind, size=0, mode=0o644, pax=None, devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.mtime = kind, size, mode, f.EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.devmajor, ti.devminor = devmajor, devminor
    if pax:
        ti.pax_headers = dict(pax)
    return ti


def _pax_size_layer(value):
    """A layer whose file etc/big has a PAX header setting its size to value (huge, negative,
    not a number); the ustar header and the data say 4 bytes."""
    body = b"size=%s\n" % value.encode()
    n = len(body) + 3
    if len(b"%d " % n) + len(body) != n:
        n += 1
    rec = b"%d " % n + body
    hdr = _raw("././@PaxHeader", tarfile.XHDTYPE, size=len(rec))
    out = hdr.tobuf(tarfile.USTAR_FORMAT) + rec + b"\0" * (-len(rec) % 512)
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        tf.addfile(_raw("etc/big", tarfile.REGTYPE, size=4), io.BytesIO(b"abcd"))
    return out + plain.getvalue()


def _archive(layers, gz=False, legacy=False, ref="hostile:1"):
    """A docker-save archive of one image: BASE, then layers."""
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "a.tar")
        f.docker_archive(p, [f.Image(ref, [BASE] + list(layers), gzip=gz)], legacy=legacy)
        with open(p, "rb") as fh:
            return fh.read()


def _oci_files(layers, gz=False):
    """The members of an OCI layout archive of one image: {name: bytes}."""
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "o.tar")
        f.oci_layout_tar(p, [f.Image("hostile:1", [BASE] + list(layers), gzip=gz)])
        with tarfile.open(p) as tf:
            return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def _tar(files):
    """A tar of {name: bytes} in name order, fixed times."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(files):
            tf.addfile(_raw(name, tarfile.REGTYPE, size=len(files[name])), io.BytesIO(files[name]))
    return buf.getvalue()


def _oci_parts(files):
    index = json.loads(files["index.json"])
    man_name = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    return index, man_name, json.loads(files[man_name])


def _oci_rewrite_manifest(files, edit):
    """Apply edit(manifest dict) and store the manifest under its new (honest) digest."""
    index, man_name, man = _oci_parts(files)
    edit(man)
    data = json.dumps(man, sort_keys=True).encode()
    del files[man_name]
    files["blobs/sha256/" + f.sha256(data)[7:]] = data
    index["manifests"][0].update(digest=f.sha256(data), size=len(data))
    files["index.json"] = json.dumps(index, sort_keys=True).encode()
    return files


def _layer_lie():
    """OCI: the layer's bytes differ from the digest the manifest gives."""
    files = _oci_files([f.layer_tar([("file", "etc/motd", b"hi\n")])])
    _, _, man = _oci_parts(files)
    name = "blobs/sha256/" + man["layers"][1]["digest"][7:]
    files[name] = files[name].replace(b"hi\n", b"HI\n")
    return _tar(files)


def _config_lie():
    """OCI: the config blob's bytes differ from its digest."""
    files = _oci_files([])
    _, _, man = _oci_parts(files)
    name = "blobs/sha256/" + man["config"]["digest"][7:]
    files[name] = files[name].replace(b'"os": "linux"', b'"os": "LINUX"')
    return _tar(files)


def _size_lie():
    """OCI: the manifest says the layer is 1 byte long."""
    files = _oci_files([f.layer_tar([("file", "etc/motd", b"hi\n")])])
    return _tar(_oci_rewrite_manifest(files, lambda m: m["layers"][1].update(size=1)))


def _diff_id_lie():
    """docker-save (pre-25): the config's diff_id for the top layer is not its tar's sha256."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(_archive([f.layer_tar([("file", "etc/motd", b"x")])],
                                                  legacy=True))) as tf:
        for m in tf.getmembers():
            if m.isfile():
                files[m.name] = tf.extractfile(m).read()
    manifest = json.loads(files["manifest.json"])
    config = json.loads(files.pop(manifest[0]["Config"]))
    config["rootfs"]["diff_ids"][-1] = "sha256:" + "1" * 64
    data = json.dumps(config, sort_keys=True).encode()
    manifest[0]["Config"] = f.sha256(data)[7:] + ".json"
    files[manifest[0]["Config"]] = data
    files["manifest.json"] = json.dumps(manifest).encode()
    return _tar(files)


def _replace_member(archive, name, data):
    files = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        for m in tf.getmembers():
            if m.isfile():
                files[m.name] = tf.extractfile(m).read()
    if data is None:
        del files[name]
    else:
        files[name] = data
    return _tar(files)


def _gzip_layer_archive(gz_bytes):
    """An OCI archive whose second layer blob is gz_bytes (honest digest and size, gzip type)."""
    files = _oci_files([f.layer_tar([("file", "etc/motd", b"m" * 4096)])], gz=True)
    _, _, man = _oci_parts(files)
    old = "blobs/sha256/" + man["layers"][1]["digest"][7:]
    del files[old]
    files["blobs/sha256/" + f.sha256(gz_bytes)[7:]] = gz_bytes

    def edit(m):
        m["layers"][1].update(digest=f.sha256(gz_bytes), size=len(gz_bytes))
    return _tar(_oci_rewrite_manifest(files, edit))


def _gz(data):
    return gzip.compress(data, 6, mtime=0)


def _gzip_bomb(mib=300):
    """A gzip layer (~0.3 MB) whose tar holds one file of `mib` MiB of zeros, compressed as it
    is made (the tar itself never exists in memory)."""
    size = mib << 20
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(_raw("etc/zeros", tarfile.REGTYPE, size=size).tobuf(tarfile.USTAR_FORMAT))]
    zeros = bytes(1 << 20)
    for _ in range(mib):
        out.append(z.compress(zeros))
    out.append(z.compress(bytes(1024)))  # the two end blocks (size is a multiple of 512)
    out.append(z.flush())
    return b"".join(out)


def _cases():
    """[(file name, feed, expectation, what, bytes)]."""
    layer = f.layer_tar
    big = layer([("file", "etc/big", bytes(range(256)) * 2048)])
    gz_big = _gz(big)
    corrupt = bytearray(gz_big)
    corrupt[len(corrupt) // 2] ^= 0xFF
    corrupt[len(corrupt) // 2 + 1] ^= 0xFF
    return [
        ("layer-dotdot.tar", "load", "refused: climbs out", "a layer entry ../evil",
         _archive([layer([("file", "../evil", b"x")])])),
        ("layer-absolute.tar", "load", "refused: absolute path", "a layer entry /abs",
         _archive([layer([("file", OUTSIDE + "/abs", b"x")])])),
        ("layer-symlink-write-through.tar", "load", "refused: through the symlink",
         "symlink d -> %s, then the file d/pwned" % OUTSIDE,
         _archive([layer([("symlink", "d", OUTSIDE), ("file", "d/pwned", b"x")])])),
        ("layer-symlink-dotdot-write-through.tar", "load", "refused: through the symlink",
         "symlink d -> ../../../../../../.., then d/tmp/berth-hostile-outside/pwned",
         _archive([layer([("symlink", "d", "../../../../../../.."),
                          ("file", "d" + OUTSIDE + "/pwned", b"x")])])),
        ("layer-hardlink-outside.tar", "load", "refused: climbs out",
         "hardlink h -> ../../../etc/passwd",
         _archive([layer([("hardlink", "h", "../../../etc/passwd")])])),
        ("layer-hardlink-absolute.tar", "load", "refused: absolute path",
         "hardlink h -> /etc/passwd", _archive([layer([("hardlink", "h", "/etc/passwd")])])),
        ("layer-hardlink-through-symlink.tar", "load", "refused: through the symlink",
         "symlink d -> /etc, then hardlink h -> d/passwd",
         _archive([layer([("symlink", "d", "/etc"), ("hardlink", "h", "d/passwd")])])),
        ("layer-devices-setuid.tar", "load", "accepted",
         "char device dev/null 1/3, block device dev/loop9 7/9, a fifo, a setuid and a setgid "
         "file: made inside the layer dir only, modes kept",
         _archive([layer([("dir", "dev"), ("dir", "bin"),
                          ("raw", _raw("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1,
                                       devminor=3), None),
                          ("raw", _raw("dev/loop9", tarfile.BLKTYPE, mode=0o660, devmajor=7,
                                       devminor=9), None),
                          ("raw", _raw("dev/fifo", tarfile.FIFOTYPE, mode=0o600), None),
                          ("file", "bin/su", b"#!/bin/sh\n", 0o4755),
                          ("file", "bin/wall", b"#!/bin/sh\n", 0o2755)])])),
        ("layer-pax-huge-size.tar", "load", "refused: truncated",
         "a PAX size of 10^20 bytes", _archive([_pax_size_layer("100000000000000000000")])),
        ("layer-pax-negative-size.tar", "load", "refused: invalid PAX size", "a PAX size of -1",
         _archive([_pax_size_layer("-1")])),
        ("layer-pax-nonnumeric-size.tar", "load", "refused: invalid PAX size", "a PAX size of 'lots'",
         _archive([_pax_size_layer("lots")])),
        ("layer-gzip-truncated.tar", "load", "refused: truncated",
         "a gzip layer cut in half (its digest and size honest)",
         _gzip_layer_archive(gz_big[:len(gz_big) // 2])),
        ("layer-gzip-corrupt.tar", "load", "refused: gzip",
         "a gzip layer with two bytes flipped in the deflate stream",
         _gzip_layer_archive(bytes(corrupt))),
        ("layer-gzip-bomb.tar", "load", "refused: gzip bomb",
         "a 0.3 MB gzip layer that expands to a 300 MiB file of zeros",
         _gzip_layer_archive(_gzip_bomb())),
        ("layer-diff-id-lie.tar", "load", "refused: " + "sha256:" + "1" * 64,
         "the config's diff_id is not the layer tar's sha256", _diff_id_lie()),
        ("oci-layer-digest-lie.tar", "load", "refused: digest mismatch",
         "a layer blob whose bytes are not its digest", _layer_lie()),
        ("oci-config-digest-lie.tar", "load", "refused: digest mismatch",
         "a config blob whose bytes are not its digest", _config_lie()),
        ("oci-layer-size-lie.tar", "load", "refused: size mismatch",
         "the manifest gives the layer a size of 1 byte", _size_lie()),
        ("save-manifest-bad-json.tar", "load", "refused: manifest.json",
         "docker-save manifest.json is not JSON",
         _replace_member(_archive([], legacy=True), "manifest.json", b"[{not json")),
        ("save-manifest-wrong-shape.tar", "load", "refused: manifest.json",
         "docker-save manifest.json is an object, not a list",
         _replace_member(_archive([], legacy=True), "manifest.json", b'{"Config": 1}')),
        ("save-manifest-missing-layer.tar", "load", "refused: has no layer",
         "manifest.json names a layer.tar the archive does not hold", _missing_layer()),
        ("save-config-bad-json.tar", "load", "refused: config",
         "the image config is not JSON", _bad_config()),
        ("oci-index-bad-json.tar", "load", "refused: index.json",
         "an OCI layout whose index.json is not JSON",
         _tar(dict(_oci_files([]), **{"index.json": b"{nope"}))),
        ("import-dotdot.tar", "import", "refused: climbs out",
         "a rootfs tar for import with the entry ../evil", layer([("file", "../evil", b"x")])),
        ("import-truncated-gzip.tar.gz", "import", "refused: rootfs archive is truncated",
         "a gzip rootfs tar for import cut in half", gz_big[:len(gz_big) // 2]),
    ]


def _missing_layer():
    """docker-save (pre-25) whose manifest.json names a layer that is not in the archive."""
    archive = _archive([], legacy=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        manifest = json.loads(tf.extractfile("manifest.json").read())
    manifest[0]["Layers"] = ["0" * 64 + "/layer.tar"]
    return _replace_member(archive, "manifest.json", json.dumps(manifest).encode())


def _bad_config():
    """docker-save (pre-25) whose config member is not JSON (manifest.json points at it)."""
    archive = _archive([], legacy=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        manifest = json.loads(tf.extractfile("manifest.json").read())
    return _replace_member(archive, manifest[0]["Config"], b"this is not json")


def write(dest):
    # type: (str) -> list
    """Write every case's file and expect.json to dest; returns the names written."""
    os.makedirs(dest, exist_ok=True)
    expect = {}
    for name, feed, outcome, what, data in _cases():
        with open(os.path.join(dest, name), "wb") as fh:
            fh.write(data)
        expect[name] = {"feed": feed, "outcome": outcome, "what": what}
    with open(os.path.join(dest, "expect.json"), "w") as fh:
        json.dump(expect, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return sorted(expect) + ["expect.json"]


if __name__ == "__main__":
    print("\n".join(write(sys.argv[1] if len(sys.argv) > 1 else CORPUS)))
