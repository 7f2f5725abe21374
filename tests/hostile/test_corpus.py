"""The hostile-input corpus (tests/hostile/corpus/, made by make_corpus.py; expect.json says
what must happen to each file): every hostile file is refused with one clear line, leaves the
data root as it was (the checker finds nothing, nothing new on disk) and writes nothing outside
it; device nodes and setuid files are accepted, as dockerd accepts them, inside the layer dir."""

import json
import os
import stat

import pytest

from runtime import datacheck
from runtime.errors import InvalidParameter
from tests.engine.conftest import make_engine
from tests.hostile import make_corpus

CORPUS = make_corpus.CORPUS
with open(os.path.join(CORPUS, "expect.json")) as _f:
    EXPECT = json.load(_f)


def snapshot(root):
    """Every path under root with its mode and size (the store's lock file aside)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if name == "lock":
                continue
            st = os.lstat(p)
            out.add((os.path.relpath(p, root), st.st_mode, 0 if stat.S_ISDIR(st.st_mode)
                     else st.st_size))
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = make_engine(str(tmp_path_factory.mktemp("hostile") / "root"))
    yield eng
    eng.close()


def test_corpus_is_what_the_script_makes(tmp_path):
    made = make_corpus.write(str(tmp_path))
    assert sorted(made) == sorted(n for n in os.listdir(CORPUS) if not n.endswith(".py"))
    for name in made:
        with open(os.path.join(CORPUS, name), "rb") as a, open(str(tmp_path / name), "rb") as b:
            assert a.read() == b.read(), "%s differs: run python -m tests.hostile.make_corpus" % name


def _feed(engine, name):
    with open(os.path.join(CORPUS, name), "rb") as f:
        if EXPECT[name]["feed"] == "load":
            return engine.image_load(f)
        return engine.image_import(f)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECT.items() if e["outcome"] != "accepted"))
def test_hostile_input_is_refused_and_changes_nothing(engine, name):
    assert not os.path.lexists(make_corpus.OUTSIDE)
    before = snapshot(engine.data_root)
    with pytest.raises(InvalidParameter) as err:
        _feed(engine, name)
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert EXPECT[name]["outcome"].split(": ", 1)[1] in msg, (EXPECT[name]["what"], msg)
    assert snapshot(engine.data_root) == before
    assert [f.line() for f in datacheck.check(engine.data_root, engine.store)] == []
    assert not os.path.lexists(make_corpus.OUTSIDE)


def test_devices_and_setuid_files_stay_inside_the_layer(engine):
    name = "layer-devices-setuid.tar"
    assert EXPECT[name]["outcome"] == "accepted"
    (ref,) = _feed(engine, name)
    top = engine.store.layer_dirs(engine.store.resolve(ref))[-1]
    st = os.lstat(os.path.join(top, "dev", "null"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    st = os.lstat(os.path.join(top, "dev", "loop9"))
    assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 9)
    assert stat.S_ISFIFO(os.lstat(os.path.join(top, "dev", "fifo")).st_mode)
    assert stat.S_IMODE(os.lstat(os.path.join(top, "bin", "su")).st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(os.path.join(top, "bin", "wall")).st_mode) == 0o2755
    assert not os.path.lexists(make_corpus.OUTSIDE)
    assert [f.line() for f in datacheck.check(engine.data_root, engine.store)] == []
    engine.image_remove(ref)
    assert [f.line() for f in datacheck.check(engine.data_root, engine.store)] == []
