"""Seccomp and no_new_privs of containers and execs on a real engine: what the process's
/proc/self/status says and what the kernel refuses; the AppArmor profile chosen; SecurityOpt and
UsernsMode values berth does not implement are refused at create."""

import json

import pytest

from runtime.errors import InvalidParameter
from tests.engine.conftest import run_container

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"


def _status(out):
    return dict(line.split(":\t") for line in out.decode().splitlines())


def test_default_container_is_filtered_without_no_new_privs(clean_containers):
    code, out, err, _ = run_container(clean_containers, STATUS)
    assert code == 0, err
    assert _status(out) == {"Seccomp": "2", "NoNewPrivs": "0"}


def test_default_filter_refuses_what_dockerd_refuses(clean_containers):
    # unshare(CLONE_NEWUSER) is not in the allow list without CAP_SYS_ADMIN; mount needs it too
    code, out, err, _ = run_container(
        clean_containers, "unshare -U true; echo unshare=$?; mount -t tmpfs t /mnt; echo mount=$?")
    assert b"unshare=1" in out and b"mount=255" in out or b"mount=1" in out, (out, err)
    assert b"Operation not permitted" in err


def test_unconfined_and_privileged_run_unfiltered(clean_containers):
    for hc in ({"SecurityOpt": ["seccomp=unconfined"]}, {"Privileged": True}):
        code, out, err, info = run_container(clean_containers, STATUS, HostConfig=hc)
        assert code == 0, err
        assert _status(out)["Seccomp"] == "0", hc
    assert info["HostConfig"]["Privileged"] is True


def test_custom_profile_and_no_new_privileges(clean_containers):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    hc = {"SecurityOpt": ["seccomp=" + json.dumps(profile), "no-new-privileges"]}
    code, out, err, _ = run_container(clean_containers, STATUS + "; mkdir /x", HostConfig=hc)
    assert code == 1
    assert _status(out) == {"Seccomp": "2", "NoNewPrivs": "1"}
    assert b"Permission denied" in err  # errnoRet 13 = EACCES
    code, out, _, _ = run_container(clean_containers, STATUS, HostConfig={
        "SecurityOpt": ["no-new-privileges:false"]})
    assert _status(out)["NoNewPrivs"] == "0"


def _exec_output(eng, cid, cmd):
    exec_id = eng.exec_create(cid, {"Cmd": cmd, "AttachStdout": True})
    sock = eng.exec_start(exec_id)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


@pytest.mark.parametrize("opts, nnp", [([], "0"), (["no-new-privileges=true"], "1")])
def test_exec_gets_the_containers_filter(clean_containers, opts, nnp):
    eng = clean_containers
    cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["sleep", "30"],
                                "HostConfig": {"SecurityOpt": opts}})["Id"]
    eng.container_start(cid)
    try:
        data = _exec_output(eng, cid, ["sh", "-c", STATUS + "; unshare -U true || echo refused"])
        assert b"Seccomp:\t2" in data and (b"NoNewPrivs:\t" + nnp.encode()) in data, data
        assert b"refused" in data
    finally:
        eng.container_remove(cid, force=True)


@pytest.mark.parametrize("hc, words", [
    ({"SecurityOpt": ["apparmor=docker-default"]}, "AppArmor"),
    ({"SecurityOpt": ["label=type:svirt_t"]}, "SELinux"),
    ({"SecurityOpt": ["systempaths=unconfined"]}, "Invalid --security-opt"),
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, "true or false"),
    ({"SecurityOpt": ["seccomp={not json"]}, "invalid JSON"),
    ({"SecurityOpt": ["seccomp=" + json.dumps({"defaultAction": "SCMP_ACT_NOPE"})]}, "SCMP_ACT_NOPE"),
    ({"UsernsMode": "private"}, "UsernsMode 'private' is not supported"),
    ({"SecurityOpt": ["seccomp=" + json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                               "flags": ["SECCOMP_FILTER_FLAG_LOG"]})]}, "flags"),
])
def test_unknown_security_settings_are_refused(clean_containers, hc, words):
    with pytest.raises(InvalidParameter) as e:
        clean_containers.container_create({"Image": "busybox:latest", "Cmd": ["true"], "HostConfig": hc})
    assert words in str(e.value)
    assert clean_containers.container_list(all=True) == []


def test_no_op_lsm_values_are_accepted(clean_containers):
    code, _, err, _ = run_container(clean_containers, "true", HostConfig={
        "SecurityOpt": ["label=disable", "apparmor=unconfined"], "UsernsMode": "host"})
    assert code == 0, err


def test_kernel_without_seccomp(clean_containers, monkeypatch):
    """As dockerd on such a kernel: the default profile quietly goes, a custom one is refused
    (the kernel's answer is overridden here; this machine has seccomp)."""
    from runtime.container import seccomp
    monkeypatch.setattr(seccomp, "_supported", False)
    code, out, err, _ = run_container(clean_containers, STATUS)
    assert code == 0 and _status(out)["Seccomp"] == "0", err
    with pytest.raises(InvalidParameter) as e:
        clean_containers.container_create({"Image": "busybox:latest", "Cmd": ["true"], "HostConfig": {
            "SecurityOpt": ['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']}})
    assert "seccomp is not enabled in your kernel" in str(e.value)
    assert clean_containers.system_info()["SecurityOptions"] == []


def test_apparmor_profile_choice_and_refusals(monkeypatch):
    """Which profile a process asks for on exec: berth-default unless privileged or unconfined;
    a named one must be loaded; on a host without AppArmor (this one) only unconfined goes."""
    from runtime.container import apparmor, security
    on, off = security.AppArmorState(True), security.AppArmorState(False)
    caps = [0]
    monkeypatch.setattr(apparmor, "loaded_profiles", lambda: {"berth-default", "custom"})
    for hc, lsm, want in (({}, on, "berth-default"), ({"Privileged": True}, on, None),
                          ({"SecurityOpt": ["apparmor=unconfined"]}, on, None),
                          ({"SecurityOpt": ["apparmor=custom"]}, on, "custom"),
                          ({"SecurityOpt": ["apparmor:custom"], "Privileged": True}, on, "custom"),
                          ({}, off, None), ({"SecurityOpt": ["apparmor=unconfined"]}, off, None)):
        assert security.process_options(hc, caps, lsm=lsm)["apparmor"] == want, hc
    broken = security.AppArmorState(True, "apparmor_parser failed")
    for hc, lsm, words in (({"SecurityOpt": ["apparmor=custom"]}, off, "AppArmor is not enabled"),
                           ({"SecurityOpt": ["apparmor=nope"]}, on, "no such AppArmor profile is loaded"),
                           ({}, broken, "apparmor=unconfined")):
        with pytest.raises(InvalidParameter) as e:
            security.process_options(hc, caps, lsm=lsm)
        assert words in str(e.value)
    text = apparmor.profile_text()
    assert text.count("{") == text.count("}") and "profile berth-default flags=(attach_disconnected" in text
    assert "deny mount," in text and "peer=berth-default," in text


def test_apparmor_needs_the_kernel_and_the_parser(monkeypatch, tmp_path):
    """As dockerd decides: AppArmor confines containers where the kernel runs it and
    apparmor_parser is installed; a kernel with AppArmor on but no parser (a Debian cloud image
    without the apparmor package) runs them unconfined, with no error at every start."""
    from runtime.container import apparmor, security
    enabled, securityfs, bin_dir = tmp_path / "enabled", tmp_path / "securityfs", tmp_path / "bin"
    securityfs.mkdir()
    bin_dir.mkdir()
    monkeypatch.setattr(apparmor, "_ENABLED", str(enabled))
    monkeypatch.setattr(apparmor, "_SECURITYFS", str(securityfs))
    monkeypatch.setattr(apparmor, "_PARSERS", (str(bin_dir / "apparmor_parser"),))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    enabled.write_text("N\n")
    assert not apparmor.host_enabled()
    enabled.write_text("Y\n")
    assert not apparmor.host_enabled()  # no parser
    lsm = security.AppArmorState.at_start(str(tmp_path / "root"))
    assert (lsm.enabled, lsm.problem) == (False, "")
    assert security.process_options({}, [0], lsm=lsm)["apparmor"] is None
    (bin_dir / "apparmor_parser").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "apparmor_parser").chmod(0o755)
    assert apparmor.host_enabled() and apparmor.parser() == str(bin_dir / "apparmor_parser")


def test_label_refused_without_selinux(clean_containers):
    with pytest.raises(InvalidParameter) as e:
        clean_containers.container_create({"Image": "busybox:latest", "HostConfig": {
            "SecurityOpt": ["label=level:s0:c100,c200"]}})
    assert "SELinux is not enabled on this host" in str(e.value)
