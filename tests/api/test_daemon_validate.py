"""`berthd --validate` refuses every daemon.json the engine would refuse at start."""

import json
import subprocess
import sys

from tests.api.conftest import ROOT


def _validate(path):
    return subprocess.run([sys.executable, "-m", "runtime.daemon.main", "--validate", "--config-file",
                           str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def test_validate_refuses_the_systemd_cgroup_driver_the_engine_cannot_start_with(tmp_path):
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"exec-opts": ["native.cgroupdriver=systemd"]}))
    out = _validate(conf)
    err = out.stderr.decode()
    assert out.returncode == 1 and str(conf) in err and "systemd cgroup driver is not supported" in err, err
    assert err.count("\n") == 1
    conf.write_text(json.dumps({"exec-opts": ["native.cgroupdriver=cgroupfs"]}))
    out = _validate(conf)
    assert out.returncode == 0 and out.stdout.decode().strip() == "configuration OK"


def test_validate_security_keys(tmp_path):
    conf = tmp_path / "daemon.json"
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}))
    for bad, words in (({"userns-remap": "bad name"}, "is not default, USER[:GROUP] or UID[:GID]"),
                       ({"selinux-enabled": "yes"}, "must be a boolean"),
                       ({"seccomp-profile": str(profile)}, "argument index 9 is not 0-5"),
                       ({"seccomp-profile": str(tmp_path / "none.json")}, "No such file"),
                       ({"no-new-privileges": "yes"}, "must be a boolean")):
        conf.write_text(json.dumps(bad))
        out = _validate(conf)
        err = out.stderr.decode()
        assert out.returncode == 1 and words in err and err.count("\n") == 1, (bad, err)
    conf.write_text(json.dumps({"userns-remap": "", "selinux-enabled": True, "no-new-privileges": True,
                                "seccomp-profile": "unconfined"}))
    out = _validate(conf)
    assert out.returncode == 0, out.stderr
