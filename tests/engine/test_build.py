"""Engine.image_build on both storage drivers: the layers a build makes (RUN's diff with a
whiteout for a deletion, COPY's tar, none for config steps), ADD of a layer image's files
with --from, the context limit, and what a failed build leaves."""

import io
import os
import subprocess
import tarfile
import uuid

import pytest

from runtime.build.builder import BuildError, Options
from runtime.build.context import DEFAULT_LIMIT
from runtime.errors import InvalidParameter
from tests.engine.conftest import _cgroup_dirs, make_engine, remove_all_containers, run_container

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers and mounts need root")

DOCKERFILE = b"""\
FROM busybox:latest AS first
RUN mkdir -p /data && echo one > /data/one && echo two > /data/two
FROM busybox:latest
COPY --from=first /data/ /copied/
COPY app /app
RUN rm /copied/two /bin/vi && echo ran > /ran
ENV K=v
"""


def context(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture(params=["overlay2", "vfs"])
def eng(request, tmp_path, busybox_tar):
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    e = make_engine(tmp_path / "root", {"storage-driver": request.param, "cgroup-parent": parent})
    with open(busybox_tar, "rb") as fh:
        e.image_load(fh)
    yield e
    remove_all_containers(e)
    e.close()
    for d in _cgroup_dirs(parent):
        if os.path.isdir(d):
            os.rmdir(d)


def _layer_names(e, image_id, index):
    rec = e.store.record(image_id)["layers"][index]
    with e.store.open_blob(rec["digest"]) as fh, tarfile.open(fileobj=fh, mode="r|*") as tf:
        return sorted(m.name for m in tf)


def test_layers_and_whiteouts(eng):
    msgs = []
    image_id = eng.image_build(context({"Dockerfile": DOCKERFILE, "app": b"app\n"}),
                               Options(tags=["built:1"]), msgs.append)
    base = len(eng.store.record(eng.store.resolve("busybox"))["layers"])
    layers = eng.store.record(image_id)["layers"]
    assert len(layers) == base + 3  # COPY, COPY, RUN; ENV none
    assert _layer_names(eng, image_id, base) == ["copied", "copied/one", "copied/two"]
    assert _layer_names(eng, image_id, base + 1) == ["app"]
    run_layer = _layer_names(eng, image_id, base + 2)
    assert "copied/.wh.two" in run_layer and "bin/.wh.vi" in run_layer and "ran" in run_layer
    hist = eng.store.image_config(image_id)["history"]
    assert [h.get("empty_layer", False) for h in hist[base:]] == [False, False, False, True]
    code, out, _, _ = run_container(eng, "ls /copied; cat /app /ran; ls /bin/vi || echo no-vi",
                                    image="built:1")
    assert (code, out) == (0, b"one\napp\nran\nno-vi\n")
    assert msgs[-1] == {"stream": "Successfully tagged built:1\n"}
    assert eng.container_list(all=True) == []


def test_failed_build_and_limits(eng, tmp_path):
    before = set(eng.store.ids())
    with pytest.raises(BuildError) as err:
        eng.image_build(context({"Dockerfile": b"FROM busybox\nRUN echo ok > /ok\n"
                                               b"RUN echo bad; exit 7\n"}), Options(), list)
    assert "returned a non-zero code: 7" in str(err.value) and "last output: bad" in str(err.value)
    assert eng.container_list(all=True) == []
    made = set(eng.store.ids()) - before
    assert len(made) == 1  # the RUN that worked, kept as cache
    assert os.listdir(os.path.join(eng.data_root, "build", "tmp")) == []
    eng.build_service.context_limit = 1 << 20
    try:
        with pytest.raises(InvalidParameter) as err:
            eng.image_build(context({"Dockerfile": b"FROM busybox\n",
                                     "big": os.urandom(2 << 20)}), Options(), list)
        assert "larger than the limit of 1 MiB" in str(err.value)
    finally:
        eng.build_service.context_limit = DEFAULT_LIMIT
    assert os.listdir(os.path.join(eng.data_root, "build", "tmp")) == []


ARGS = b"""\
ARG TOP=top-default
ARG ONLY_FROM=busybox
FROM $ONLY_FROM AS one
ARG TOP
ARG LOCAL=local-default
ENV FROM_ENV=env
ARG FROM_ENV=arg-loses
RUN echo "top=$TOP local=$LOCAL env=$FROM_ENV" > /args
FROM one
RUN echo "second=[$TOP][$LOCAL]" > /second
"""


def test_arg_scoping(eng):
    msgs = []
    image_id = eng.image_build(context({"Dockerfile": ARGS}),
                               Options(buildargs={"LOCAL": "given", "UNUSED": "x"}), msgs.append)
    code, out, _, _ = run_container(eng, "cat /args /second; echo $TOP$LOCAL", image=image_id)
    assert out == b"top=top-default local=given env=env\nsecond=[][]\n\n"
    assert {"stream": "[Warning] One or more build-args [UNUSED] were not consumed\n"} in msgs
    env = eng.store.image_config(image_id)["config"]["Env"]
    assert not [e for e in env if e.startswith(("TOP=", "LOCAL="))]  # ARGs are not kept
    hist = eng.store.image_config(image_id)["history"]
    assert hist[-1]["created_by"].startswith("|") is False  # no ARG in scope in stage two
    assert any(h["created_by"].startswith("|2 LOCAL=given TOP=top-default /bin/sh -c echo")
               for h in hist)
    # a different build arg value misses the cache from the RUN on
    msgs = []
    eng.image_build(context({"Dockerfile": ARGS}), Options(buildargs={"LOCAL": "other"}),
                    msgs.append)
    hits = [m for m in msgs if m == {"stream": " ---> Using cache\n"}]
    assert len(hits) == 4  # ARG TOP, ARG LOCAL, ENV, ARG FROM_ENV (all before the RUN)


def test_cache_from_an_image_without_its_parents(eng, tmp_path, busybox_tar):
    dockerfile = b"FROM busybox\nCOPY app /app\nRUN echo ran > /ran\nENV A=1\nCMD [\"cat\", \"/ran\"]\n"
    files = {"Dockerfile": dockerfile, "app": b"app\n"}
    built = eng.image_build(context(files), Options(tags=["src:1"]), list)
    archive = tmp_path / "src.tar"
    with open(str(archive), "wb") as out:
        eng.image_save(["src:1"], out)
    parent = "berth-test-" + uuid.uuid4().hex[:12]
    other = make_engine(tmp_path / "root2", {"storage-driver": eng.storage.name,
                                             "cgroup-parent": parent})
    try:
        for path in (busybox_tar, str(archive)):
            with open(path, "rb") as fh:
                other.image_load(fh)
        msgs = []
        got = other.image_build(context(files), Options(cachefrom=["src:1", "nosuch:1"]),
                                msgs.append)
        text = "".join(m.get("stream", "") for m in msgs)
        assert text.count("---> Using cache") == 4 and "Running in" not in text, text
        assert other.store.diff_ids(got) == eng.store.diff_ids(built)
        assert other.store.image_config(got)["config"] == eng.store.image_config(built)["config"]
        # a changed file breaks the match from that COPY on
        msgs = []
        other.image_build(context(dict(files, app=b"changed\n")), Options(cachefrom=["src:1"]),
                          msgs.append)
        text = "".join(m.get("stream", "") for m in msgs)
        assert "Using cache" not in text and "Running in" in text
    finally:
        remove_all_containers(other)
        other.close()
        for d in _cgroup_dirs(parent):
            if os.path.isdir(d):
                os.rmdir(d)


def test_rmi_prunes_the_build_steps(eng):
    before = set(eng.store.ids())
    layers_before = set(os.listdir(os.path.join(eng.store.root, "layers")))
    files = {"Dockerfile": b"FROM busybox\nCOPY app /app\nRUN echo x > /x\nENV A=1\n",
             "app": b"app\n"}
    eng.image_build(context(files), Options(tags=["gone:1"]), list)
    kept = eng.image_build(context(dict(files, Dockerfile=files["Dockerfile"].replace(
        b"ENV A=1", b"ENV B=2"))), Options(tags=["kept:1"]), list)  # shares COPY and RUN
    deleted = [d["Deleted"] for d in eng.image_remove("gone:1") if "Deleted" in d]
    assert len(deleted) == 1  # ENV A; its parent (the RUN) is also kept:1's
    out = eng.image_remove("kept:1")
    assert [d for d in out if "Deleted" in d][0] == {"Deleted": kept}
    assert len([d for d in out if "Deleted" in d]) == 3  # ENV B, RUN, COPY
    assert set(eng.store.ids()) == before
    assert set(os.listdir(os.path.join(eng.store.root, "layers"))) == layers_before
    # noprune keeps the steps
    eng.image_build(context(files), Options(tags=["np:1"]), list)
    assert len(eng.image_remove("np:1", prune=False)) == 2  # untagged + deleted
    assert len(set(eng.store.ids()) - before) == 2


def test_a_crashed_builds_spool_is_removed_at_start(tmp_path):
    root = tmp_path / "root"
    tmp = root / "build" / "tmp"
    tmp.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp / ("context-%d-abc" % dead.pid)).write_bytes(b"x")
    (tmp / ("context-%d-live" % os.getpid())).write_bytes(b"x")
    e = make_engine(root)
    try:
        assert os.listdir(str(tmp)) == ["context-%d-live" % os.getpid()]
    finally:
        e.close()


def test_scratch_and_entrypoint_reset(eng):
    image_id = eng.image_build(context({"Dockerfile": b"FROM scratch\nCOPY a /a\nCMD [\"/a\"]\n",
                                        "a": b"A"}), Options(), list)
    assert len(eng.store.record(image_id)["layers"]) == 1
    assert _layer_names(eng, image_id, 0) == ["a"]
    with pytest.raises(InvalidParameter) as err:
        eng.image_build(context({"Dockerfile": b"FROM scratch\nRUN true\n"}), Options(), list)
    assert "FROM scratch has no files yet" in str(err.value)
    # an ENTRYPOINT drops the CMD it inherited, not the one set in the same stage
    base = eng.image_build(context({"Dockerfile": b"FROM busybox\nCMD [\"inherited\"]\n"}),
                           Options(tags=["withcmd:1"]), list)
    assert eng.store.image_config(base)["config"]["Cmd"] == ["inherited"]
    child = eng.image_build(context({"Dockerfile": b"FROM withcmd:1\nENTRYPOINT [\"echo\"]\n"}),
                            Options(), list)
    assert eng.store.image_config(child)["config"]["Cmd"] is None
    both = eng.image_build(context({"Dockerfile": b"FROM withcmd:1\nCMD [\"own\"]\n"
                                                  b"ENTRYPOINT [\"echo\"]\n"}), Options(), list)
    assert eng.store.image_config(both)["config"]["Cmd"] == ["own"]
