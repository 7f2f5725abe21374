"""`POST /build/prune` (`docker builder prune`): the step cache is forgotten, so the next build
runs its steps again; filters other than `until` and keep-storage are refused in one line."""

import json
from urllib.parse import quote

import pytest

from tests.api.test_build import docker_build

pytestmark = pytest.mark.timeout(300)


def _build(d, ctx):
    out = docker_build(d, "-t", "pruned:1", str(ctx))
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


def test_builder_prune_forgets_the_step_cache(loaded, tmp_path):
    d = loaded
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo one > /one\n")
    _build(d, tmp_path)
    assert "Using cache" in _build(d, tmp_path)
    status, _, body = d.api("POST", "/build/prune")
    reply = json.loads(body)
    assert status == 200 and len(reply["CachesDeleted"]) >= 1 and reply["SpaceReclaimed"] > 0, body
    assert "Using cache" not in _build(d, tmp_path)  # the RUN ran again
    out = d.docker("builder", "prune", "-f")
    assert out.returncode == 0, out.stderr
    assert "Using cache" not in _build(d, tmp_path)
    # an until filter in the future keeps nothing; one in the past keeps everything
    status, _, body = d.api("POST", "/build/prune?filters=" + quote(json.dumps({"until": ["1h"]})))
    assert status == 200 and json.loads(body)["CachesDeleted"] is None, body
    assert "Using cache" in _build(d, tmp_path)
    assert d.api("DELETE", "/images/pruned:1")[0] == 200


@pytest.mark.parametrize("query, message", [
    ("filters=" + quote(json.dumps({"type": ["regular"]})), "invalid filter 'type'"),
    ("keep-storage=1000", "keep-storage is not supported"),
])
def test_builder_prune_refuses_what_it_cannot_do(loaded, query, message):
    status, _, body = loaded.api("POST", "/build/prune?" + query)
    assert status == 400 and message in json.loads(body)["message"], body
