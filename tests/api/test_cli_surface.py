"""The berth CLI's file, prune, df and format commands against a real berthd, beside the
docker CLI doing the same where the output must match."""

import json
import os
import tarfile
import time

import pytest

pytestmark = pytest.mark.timeout(180)


def _ok(out):
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout.decode()


def test_create_cp_diff_export_rename(loaded, tmp_path):
    cid = _ok(loaded.berth("create", "--name", "bc1", "busybox", "sleep", "300")).strip()
    assert len(cid) == 64
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "with space").write_text("hello")
    os.chmod(str(src / "d" / "with space"), 0o640)
    os.symlink("with space", str(src / "d" / "ln"))
    _ok(loaded.berth("cp", str(src / "d"), "bc1:/tmp/"))   # into a stopped container
    _ok(loaded.berth("cp", str(src / "d" / "with space"), "bc1:/tmp/renamed"))
    _ok(loaded.berth("start", "bc1"))
    back = tmp_path / "back"
    _ok(loaded.berth("cp", "bc1:/tmp/d", str(back)))        # out of a running one
    assert (back / "with space").read_text() == "hello"
    assert os.stat(str(back / "with space")).st_mode & 0o777 == 0o640
    assert os.readlink(str(back / "ln")) == "with space"
    _ok(loaded.berth("cp", "bc1:/tmp/renamed", str(tmp_path / "one")))
    assert (tmp_path / "one").read_text() == "hello"
    # the same files through the docker CLI
    _ok(loaded.docker("cp", "bc1:/tmp/d/with space", str(tmp_path / "viadocker")))
    assert (tmp_path / "viadocker").read_text() == "hello"
    diff = _ok(loaded.berth("diff", "bc1")).splitlines()
    assert "A /tmp/d/with space" in diff and "A /tmp/renamed" in diff
    assert diff == _ok(loaded.docker("diff", "bc1")).splitlines()
    _ok(loaded.berth("export", "-o", str(tmp_path / "x.tar"), "bc1"))
    with tarfile.open(str(tmp_path / "x.tar")) as tar:
        assert "tmp/d/with space" in tar.getnames()
    _ok(loaded.berth("rename", "bc1", "bc2"))
    assert _ok(loaded.berth("inspect", "-f", "{{.Name}} {{.State.Status}}", "bc2")).strip() == "/bc2 running"
    out = loaded.berth("rename", "bc2", "bad name")
    assert out.returncode == 1 and "Invalid container name" in out.stderr.decode()
    _ok(loaded.berth("rm", "-f", "bc2"))


def test_formats_match_docker(loaded):
    _ok(loaded.berth("run", "-d", "--name", "fm1", "--label", "k=v", "busybox", "sleep", "300"))
    for fmt in ("{{.Names}}", "{{.Names}} {{.Image}} {{.State}}", "{{.Labels}}",
                "table {{.Names}}\t{{.Image}}"):
        ours = _ok(loaded.berth("ps", "--filter", "name=fm1", "--format", fmt))
        theirs = _ok(loaded.docker("ps", "--filter", "name=fm1", "--format", fmt))
        assert ours == theirs, (fmt, ours, theirs)
    for fmt in ("{{.State.Status}}", "{{json .Config.Labels}}", "{{index .Config.Labels \"k\"}}",
                "{{range .Config.Cmd}}[{{.}}]{{end}}", "{{if .State.Running}}up{{else}}down{{end}}",
                "{{.Name | upper}}", "{{len .Config.Cmd}}"):
        ours = _ok(loaded.berth("inspect", "-f", fmt, "fm1"))
        theirs = _ok(loaded.docker("inspect", "-f", fmt, "fm1"))
        assert ours == theirs, (fmt, ours, theirs)
    doc = json.loads(_ok(loaded.berth("ps", "--filter", "name=fm1", "--format", "{{json .}}")))
    assert doc["Names"] == "fm1" and doc["Labels"] == "k=v"
    out = _ok(loaded.berth("images", "--format", "{{.Repository}}:{{.Tag}}"))
    assert "busybox:latest" in out.split()
    assert _ok(loaded.berth("image", "inspect", "-f", "{{.Id}}", "busybox")).startswith("sha256:")
    _ok(loaded.berth("volume", "create", "fmv"))
    assert "fmv local" in _ok(loaded.berth("volume", "ls", "--format", "{{.Name}} {{.Driver}}")).splitlines()
    out = loaded.berth("inspect", "-f", "{{.Nope", "fm1")
    assert out.returncode == 1 and out.stderr
    _ok(loaded.berth("rm", "-f", "fm1"))
    _ok(loaded.berth("volume", "rm", "fmv"))


def test_logs_since_until_relative(loaded):
    _ok(loaded.berth("run", "--name", "lg1", "busybox", "sh", "-c", "echo early"))
    time.sleep(1.2)
    assert _ok(loaded.berth("logs", "--since", "10m", "lg1")) == "early\n"
    assert _ok(loaded.berth("logs", "--since", "1s", "lg1")) == ""
    assert _ok(loaded.berth("logs", "--until", "1970-01-02T00:00:00Z", "lg1")) == ""
    out = loaded.berth("logs", "--since", "yesterday", "lg1")
    assert out.returncode == 1 and "yesterday" in out.stderr.decode()
    _ok(loaded.berth("rm", "lg1"))


def test_prunes_and_df(loaded):
    _ok(loaded.berth("create", "--name", "pz1", "--label", "gone=1", "busybox"))
    _ok(loaded.berth("create", "--name", "pz2", "busybox"))
    out = _ok(loaded.berth("container", "prune", "-f", "--filter", "label=gone=1"))
    assert "Deleted Containers:" in out and "Total reclaimed space" in out
    names = _ok(loaded.berth("ps", "-a", "--format", "{{.Names}}")).split()
    assert "pz1" not in names and "pz2" in names
    out = loaded.berth("container", "prune", "-f", "--filter", "colour=blue")
    assert out.returncode == 1 and "invalid filter 'colour'" in out.stderr.decode()
    _ok(loaded.berth("volume", "create", "--label", "keep=yes", "pzv1"))
    _ok(loaded.berth("volume", "create", "pzv2"))
    _ok(loaded.berth("volume", "prune", "-af", "--filter", "label!=keep=yes"))
    vols = _ok(loaded.berth("volume", "ls", "-q")).split()
    assert "pzv1" in vols and "pzv2" not in vols
    df = _ok(loaded.berth("system", "df"))
    lines = df.splitlines()
    assert lines[0].split()[:3] == ["TYPE", "TOTAL", "ACTIVE"]
    assert [line.split()[0] for line in lines[1:]] == ["Images", "Containers", "Local", "Build"]
    theirs = _ok(loaded.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}"))
    ours = _ok(loaded.berth("system", "df", "--format", "{{.Type}} {{.TotalCount}}"))
    assert ours == theirs
    out = _ok(loaded.berth("system", "prune", "-f"))
    assert "pz2" not in _ok(loaded.berth("ps", "-a", "--format", "{{.Names}}")).split()
    assert "Total reclaimed space" in out
    assert _ok(loaded.berth("image", "prune", "-f")).strip().startswith("Total reclaimed space")
    _ok(loaded.berth("volume", "rm", "pzv1"))
