"""Image builds through berthd with the three clients (`berth build`, `docker build` with
DOCKER_BUILDKIT=0, docker-py's images.build): instructions, layers, cache, multi-stage,
.dockerignore, bad input, push of a built image."""

import io
import json
import os
import subprocess
import tarfile

import pytest

pytestmark = pytest.mark.timeout(300)

EVERY = """\
# syntax=docker/dockerfile:1
# escape=\\
ARG BASE=busybox
FROM $BASE AS base
ARG GREETING=hello
ENV APP=/app \\
    WHO="the world"
LABEL org.example.name="built app" version=1
# a comment between instructions
COPY --chown=nobody:nobody conf/ $APP/conf/
COPY *.txt $APP/
ADD files.tar.gz /opt/
WORKDIR $APP
RUN echo "$GREETING $WHO" > greeting \\
 && rm /bin/vi
SHELL ["/bin/sh", "-c"]
RUN ["/bin/sh", "-c", "echo exec form > /app/exec"]
USER nobody
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/greeting"]
"""


def _tar_gz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.uid = ti.gid = 1234
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def write_context(root, files):
    """files: {relative path: bytes or str}."""
    for rel, data in files.items():
        p = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return str(root)


def every_context(root):
    return write_context(root, {
        "Dockerfile": EVERY, "conf/app.ini": "[app]\n", "a.txt": "A\n", "b.txt": "B\n",
        "files.tar.gz": _tar_gz({"inside/one": b"1\n"}),
    })


def docker_build(d, *args):
    """`docker build ARGS` with the classic builder (DOCKER_BUILDKIT=0)."""
    from tests.api.conftest import DOCKER
    env = {"DOCKER_CONFIG": os.path.join(d.base, "docker-config"), "DOCKER_BUILDKIT": "0"}
    return d.run([DOCKER, "-H", d.host, "build"] + list(args), env=env)


def inspect(d, ref):
    status, _, body = d.api("GET", "/images/%s/json" % ref)
    assert status == 200, body
    return json.loads(body)


def run_out(d, *args):
    out = d.berth("run", "--rm", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


def test_every_instruction_with_berth_build(loaded, tmp_path):
    ctx = every_context(tmp_path / "ctx")
    out = loaded.berth("build", "-t", "every:1", "-t", "every:2", "--label", "extra=yes", ctx)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "Step 1/21 : ARG BASE=busybox" in text, text
    assert "ignoring the '# syntax=docker/dockerfile:1' directive" in text
    assert "Successfully tagged every:1" in text and "Successfully tagged every:2" in text
    doc = inspect(loaded, "every:1")
    cfg = doc["Config"]
    assert "APP=/app" in cfg["Env"] and "WHO=the world" in cfg["Env"]
    assert cfg["Labels"] == {"org.example.name": "built app", "version": "1", "extra": "yes"}
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGQUIT"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5 * 10 ** 9,
                                  "Retries": 2}
    assert cfg["OnBuild"] == ["RUN echo child"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["cat /app/greeting"]
    assert inspect(loaded, "every:2")["Id"] == doc["Id"]
    # layers: the base's, COPY, COPY, ADD, RUN, RUN; every other step is an empty_layer
    base_layers = len(inspect(loaded, "busybox")["RootFS"]["Layers"])
    assert len(doc["RootFS"]["Layers"]) == base_layers + 5
    status, _, body = loaded.api("GET", "/images/every:1/history")
    hist = json.loads(body)
    assert len(hist) == 19 + base_layers
    assert [h["CreatedBy"].split("#(nop) ")[-1] for h in hist[:2]] == [
        "LABEL extra=yes", 'CMD ["cat /app/greeting"]']
    assert sum(1 for h in hist[:19] if h["Size"] > 0) == 5
    # the files, owners and the whiteout as a container of the result sees them
    listing = run_out(loaded, "--user", "0", "--entrypoint", "sh", "every:1", "-c",
                      "cat /app/greeting /app/exec /app/a.txt /opt/inside/one; "
                      "stat -c '%U %n' /app/conf/app.ini /app/a.txt; "
                      "ls /bin/vi 2>&1 || echo vi-gone")
    assert listing.splitlines() == ["hello the world", "exec form", "A", "1",
                                    "nobody /app/conf/app.ini", "root /app/a.txt",
                                    "ls: /bin/vi: No such file or directory", "vi-gone"]
    assert run_out(loaded, "every:1") == "hello the world\n"
    # ONBUILD triggers run in a child build
    child = write_context(tmp_path / "child", {"Dockerfile": "FROM every:1\n"})
    out = loaded.berth("build", "-t", "child:1", child)
    assert out.returncode == 0, out.stderr
    assert "child\n" in out.stdout.decode()
    assert not inspect(loaded, "child:1")["Config"].get("OnBuild")


def test_cache_and_changed_file_with_docker_build(loaded, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nRUN echo one > /one\nCOPY app/ /app/\nRUN cat /app/x > /two\n"
                      "ENV DONE=1\n",
        "app/x": "first\n", "app/y": "y\n", "app/secret.key": "no\n",
        ".dockerignore": "# secrets stay home\n**/*.key\n",
    })
    first = docker_build(loaded, "-t", "cached:1", ctx)
    assert first.returncode == 0, first.stderr
    assert "Using cache" not in first.stdout.decode()
    again = docker_build(loaded, "-t", "cached:1", ctx)
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().count("---> Using cache") == 4
    assert inspect(loaded, "cached:1")["Id"] == inspect(loaded, "cached:1")["Id"]
    # an ignored file changing is not a change at all
    write_context(ctx, {"app/secret.key": "changed\n"})
    out = docker_build(loaded, "-q", ctx)
    assert out.returncode == 0 and out.stdout.decode().strip() == inspect(loaded, "cached:1")["Id"]
    assert "secret" not in run_out(loaded, "cached:1", "ls", "/app")
    # mtimes are not content
    os.utime(os.path.join(ctx, "app/y"), (1, 1))
    out = docker_build(loaded, ctx)
    assert out.stdout.decode().count("---> Using cache") == 4, out.stdout
    # a copied file changing re-runs the steps from that COPY on
    write_context(ctx, {"app/x": "second\n"})
    out = docker_build(loaded, "-t", "cached:2", ctx)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert text.count("---> Using cache") == 1
    assert text.index("Using cache") < text.index("COPY app/")
    assert run_out(loaded, "cached:2", "cat", "/two") == "second\n"
    out = docker_build(loaded, "--no-cache", "-t", "cached:3", ctx)
    assert out.returncode == 0 and "Using cache" not in out.stdout.decode()


def test_multi_stage_with_docker_py(loaded, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox AS build\nRUN mkdir /out && echo built > /out/artifact\n"
        "RUN dd if=/dev/zero of=/big bs=1k count=64\n"
        "FROM busybox AS unused\nRUN echo never > /never\n"
        "FROM busybox\nCOPY --from=build /out/artifact /artifact\nCMD [\"cat\", \"/artifact\"]\n"
    )})
    client = loaded.client()
    try:
        image, logs = client.images.build(path=ctx, tag="multi:1", rm=True)
        logs = list(logs)
        base = client.images.get("busybox")
        assert len(image.attrs["RootFS"]["Layers"]) == len(base.attrs["RootFS"]["Layers"]) + 1
        assert client.containers.run("multi:1", remove=True) == b"built\n"
        built = client.images.build(path=ctx, target="build", tag="multi:build")[0]
        assert "built\n" == client.containers.run("multi:build", ["cat", "/out/artifact"],
                                                  remove=True).decode()
        assert built.id != image.id
        import docker
        with pytest.raises((docker.errors.BuildError, docker.errors.APIError)) as err:
            client.images.build(path=ctx, target="nope")
        assert "failed to reach build target nope" in str(err.value)
    finally:
        client.close()


def test_run_failure_and_bad_input(loaded, tmp_path):
    before = {c["Id"] for c in json.loads(loaded.api("GET", "/containers/json?all=1")[2])}
    ctx = write_context(tmp_path / "fail", {
        "Dockerfile": "FROM busybox\nRUN echo kept > /kept\nRUN echo boom && exit 3\n"})
    out = loaded.berth("build", ctx)
    assert out.returncode == 1
    assert ("The command '/bin/sh -c echo boom && exit 3' returned a non-zero code: 3 "
            "(step 3/3, Dockerfile line 3); last output: boom") in out.stderr.decode()
    after = {c["Id"] for c in json.loads(loaded.api("GET", "/containers/json?all=1")[2])}
    assert after == before  # the failed step's container is gone
    out = loaded.berth("build", ctx)
    assert "---> Using cache" in out.stdout.decode()  # the step that worked is cached
    cases = [
        ("FROM busybox\nRUN true\nFOO bar\n", "Dockerfile line 3: unknown instruction: FOO"),
        ("FROM busybox\nCOPY missing /x\n",
         "file not found in build context or excluded by .dockerignore: stat missing"),
        ("FROM busybox\nCOPY ../etc/passwd /x\n", "forbidden path outside the build context"),
        ("FROM busybox\nRUN <<EOF\necho hi\nEOF\n", "heredocs (<<WORD) are not supported"),
        ("FROM busybox\nADD http://example.com/x /x\n", "downloading from a URL is not supported"),
        ("FROM --platform=linux/s390x busybox\n", "platform linux/s390x is not supported"),
        ("FROM busybox\nCOPY --chown=nosuch a /a\n", "no user named 'nosuch'"),
    ]
    for text, message in cases:
        ctx = write_context(tmp_path / ("c%d" % len(message)), {"Dockerfile": text, "a": "a"})
        out = loaded.berth("build", ctx)
        assert out.returncode == 1 and message in out.stderr.decode(), (text, out.stderr)
    out = loaded.berth("build", "--target", "zzz", ctx)
    assert "failed to reach build target zzz" in out.stderr.decode()
    # a context tar with a .. path
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("../evil")
        tf.addfile(ti, io.BytesIO(b""))
    status, _, body = loaded.api("POST", "/build", body=buf.getvalue(),
                                 headers={"Content-Type": "application/x-tar"})
    assert status == 400 and b"contains '..'" in body
    leftovers = os.listdir(os.path.join(loaded.data_root, "build", "tmp"))
    assert leftovers == []


def test_build_from_stdin_and_push(loaded, tmp_path):
    out = loaded.berth("build", "-q", "-t", "stdin:1", "-",
                       input=b"FROM busybox\nRUN echo from-stdin > /f\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == inspect(loaded, "stdin:1")["Id"]
    from tests.registry.registries import Registry
    reg = Registry(tmp_path / "registry").start()
    try:
        ref = "%s/built:1" % reg.host
        assert loaded.berth("tag", "stdin:1", ref).returncode == 0
        out = loaded.berth("push", ref)
        assert out.returncode == 0, out.stderr
        doc = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://" + ref],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert doc.returncode == 0, doc.stderr
        info = json.loads(doc.stdout)
        assert len(info["Layers"]) == len(inspect(loaded, "stdin:1")["RootFS"]["Layers"])
    finally:
        reg.stop()
