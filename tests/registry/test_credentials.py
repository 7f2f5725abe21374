"""The credentials store: docker's config.json format, mode 0600, atomic rewrite."""

import base64
import json
import os
import stat

import pytest

from runtime.errors import InvalidParameter
from runtime.cli import credentials


def test_save_load_erase_roundtrip(tmp_path):
    path = str(tmp_path / "home" / ".berth" / "config.json")
    assert credentials.load("127.0.0.1:5000", path) is None
    assert credentials.save("127.0.0.1:5000", "alice", "pw:with:colons", path) == "127.0.0.1:5000"
    assert credentials.save("docker.io", "bob", "hub", path) == "https://index.docker.io/v1/"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.load(open(path))
    assert base64.b64decode(doc["auths"]["127.0.0.1:5000"]["auth"]) == b"alice:pw:with:colons"
    assert credentials.load("https://127.0.0.1:5000/v2/", path)["password"] == "pw:with:colons"
    assert credentials.load("index.docker.io", path)["username"] == "bob"
    assert credentials.erase("127.0.0.1:5000", path) is True
    assert credentials.erase("127.0.0.1:5000", path) is False
    assert credentials.load("127.0.0.1:5000", path) is None
    assert credentials.load("docker.io", path)["username"] == "bob"
    assert [f for f in os.listdir(os.path.dirname(path)) if f != "config.json"] == []


def test_keeps_other_keys_and_env_override(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "x", "auths": {"other:1": {"auth": "dTpw"}}}))
    monkeypatch.setenv("BERTH_CONFIG", str(path))
    credentials.save("r:1", "u", "p")
    doc = json.loads(path.read_text())
    assert doc["credsStore"] == "x" and set(doc["auths"]) == {"other:1", "r:1"}


def test_corrupt_file_is_one_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(InvalidParameter) as e:
        credentials.load("r:1", str(path))
    assert str(path) in str(e.value) and "fix or remove" in str(e.value)
    assert path.read_text() == "{not json"
