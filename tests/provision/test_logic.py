"""Pure logic of provision: parsing, classification, merging, rendering, diffing (no host)."""

import json

import pytest

from provision import daemonjson, mirrors
from provision.checks import (
    FAIL,
    PASS,
    WARN,
    check_apparmor,
    check_arch,
    check_br_netfilter,
    check_dtype,
    check_kernel,
    check_kmem,
    check_overlay,
    check_storage,
    parse_kernel,
)
from provision.distros import detect
from provision.engine_kind import BERTH, DOCKER
from provision.errors import InputError, StepError, UnsupportedError
from provision.facts.base import Fact, build_script, parse_sections, split_sections
from provision.facts.system import parse_files, parse_kv, parse_mountinfo, parse_words
from provision.options import Options
from provision.render import render
from provision.steps.base import Command, file_state
from provision.steps.kernel import plan_modules

CENTOS7 = {
    "ID": "centos",
    "VERSION_ID": "7",
    "PRETTY_NAME": "CentOS Linux 7 (Core)",
    "ID_LIKE": "rhel fedora",
}


@pytest.mark.parametrize(
    "release,want",
    [
        ("3.10.0-1160.el7.x86_64", (3, 10, 0)),
        ("6.1.0-18-amd64", (6, 1, 0)),
        ("3.9", (3, 9, 0)),
        ("4.18.0-513.el8_9.x86_64", (4, 18, 0)),
        ("garbage", (0, 0, 0)),
    ],
)
def test_parse_kernel(release, want):
    assert parse_kernel(release) == want


def test_kernel_and_kmem_checks():
    assert check_kernel({"release": "3.10.0-1160.el7.x86_64"}).status == PASS
    bad = check_kernel({"release": "3.9.0-1.x86_64"})
    assert bad.status == FAIL and "older than 3.10" in bad.detail
    assert check_kmem({"release": "3.10.0-1160.el7.x86_64"}, "ro quiet").status == WARN
    assert check_kmem({"release": "3.10.0-1160.el7.x86_64"}, "ro cgroup.memory=nokmem").status == PASS
    assert check_kmem({"release": "5.14.0"}, "").status == PASS


def test_apparmor_check():
    """AppArmor on without apparmor_parser warns (the engine runs containers unconfined there)."""
    assert check_apparmor(parse_words(["enabled Y"])).status == WARN
    assert "apparmor package" in check_apparmor(parse_words(["enabled Y"])).fix
    assert check_apparmor(parse_words(["enabled Y", "parser yes"])).status == PASS
    assert check_apparmor(parse_words(["enabled N", "parser yes"])).status == PASS
    assert check_apparmor({}).status == PASS


@pytest.mark.parametrize(
    "arch,status", [("x86_64", PASS), ("aarch64", PASS), ("i686", FAIL), ("armv7l", FAIL), ("ppc64le", WARN)]
)
def test_arch(arch, status):
    c = check_arch({"machine": arch})
    assert c.status == status
    if status == FAIL:
        assert arch in c.detail


def test_distro_detection_and_override():
    p = detect(CENTOS7)
    assert (p.family, p.major, p.is_el7) == ("el", 7, True)
    eol, dead, note = p.eol()
    assert eol and dead and "vault" in note
    d = detect(
        {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm", "PRETTY_NAME": "Debian 12"}
    )
    assert (d.family, d.codename) == ("debian", "bookworm")
    with pytest.raises(UnsupportedError, match="--distro-like el\\|debian"):
        detect({"ID": "plan9", "VERSION_ID": "4", "PRETTY_NAME": "Plan 9"})
    with pytest.raises(UnsupportedError, match="unsupported OS"):
        detect({"ID": "centos", "VERSION_ID": "6"})
    assert detect({"ID": "plan9", "VERSION_ID": "4"}, "el").family == "el"


def test_module_state_script_on_this_machine():
    """The template the facts, the kernel step and the playbook share, run for real here: this
    machine's kernel has br_netfilter and overlay built in and no /lib/modules tree."""
    import os
    import subprocess

    script = render("module-state.sh.j2", {"modules": ["br_netfilter", "overlay", "no_such_mod"]})
    out = subprocess.run(["sh", "-c", script.decode()], stdout=subprocess.PIPE, text=True, check=True)
    states = parse_words(out.stdout.splitlines())
    assert states["no_such_mod"] == "missing"
    loaded = open("/proc/modules").read() if os.path.exists("/proc/modules") else ""  # CONFIG_MODULES=n
    bridge = "loaded" if "br_netfilter " in loaded else "builtin"
    active = os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables")
    assert states["br_netfilter"] == (bridge if active else "loadable")
    assert states["overlay"] in ("loaded", "builtin")


@pytest.mark.parametrize(
    "state,status,loads",
    [("builtin", PASS, False), ("loaded", PASS, False), ("loadable", PASS, True), ("missing", FAIL, False)],
)
def test_module_checks_and_kernel_step_share_one_answer(state, status, loads):
    facts = {"modules": {"br_netfilter": state, "overlay": "builtin"}, "uname": {"release": "6.18"}}
    check = check_br_netfilter(facts)
    assert check.status == status, check
    if state == "builtin":
        assert "built into the kernel" in check.detail
    assert check_overlay(facts).status == PASS
    step = plan_modules(facts, {"modules": ["overlay", "br_netfilter"]})
    cmds = [a.cmd for a in step.actions if isinstance(a, Command)]
    assert cmds == (["modprobe br_netfilter"] if loads else []), cmds


def test_storage_check_falls_back_to_vfs_where_overlay_cannot_work():
    ext4 = {"fstype": "ext2/ext3", "mountpoint": "/"}
    assert check_storage(ext4, "/var/lib/berth").status == PASS
    ovl = {"fstype": "overlayfs", "mountpoint": "/"}
    c = check_storage(ovl, "/var/lib/berth")
    assert c.status == WARN and "overlayfs" in c.detail and "vfs" in c.detail and "ext4 or xfs" in c.fix
    assert check_storage({"fstype": "nfs", "mountpoint": "/srv"}, "/srv/berth").status == WARN
    assert check_storage(ovl, "/var/lib/berth", "overlay2").status == FAIL
    assert check_storage(ext4, "/var/lib/berth", "vfs").status == WARN


def test_dtype_on_xfs():
    assert (
        check_dtype({"fstype": "xfs", "xfs": "ftype=1", "mountpoint": "/"}, "/var/lib/berth").status == PASS
    )
    c = check_dtype({"fstype": "xfs", "xfs": "ftype=0", "mountpoint": "/var"}, "/var/lib/berth")
    assert c.status == FAIL and "ftype=0" in c.detail and "mkfs.xfs -n ftype=1" in c.fix
    assert check_dtype({"fstype": "xfs", "xfs": "", "mountpoint": "/"}, "/x").status == WARN


def test_mirror_presets_and_validation():
    assert mirrors.resolve(None)["vault"] == "https://vault.centos.org"
    assert mirrors.resolve("aliyun")["docker-ce"] == "https://mirrors.aliyun.com/docker-ce"
    assert mirrors.resolve("http://10.0.0.1:8080/m/")["vault"] == "http://10.0.0.1:8080/m/centos-vault"
    for bad in ("ftp://x/y", "mirrors.aliyun", "http://", "http://a b/", "http://h:99999/"):
        with pytest.raises(InputError, match="invalid mirror URL"):
            mirrors.resolve(bad)


def test_daemon_json_merge_keeps_other_keys():
    existing = (
        b'{"log-driver": "journald", "log-opts": {"max-size": "10m"}, "registry-mirrors": ["http://old"]}'
    )
    wanted = Options(
        engine="docker", registry_mirrors=["https://m.example"], daemon_opts=["log-opts.max-file=3"]
    ).wanted_daemon_json()
    current, merged = daemonjson.merged(existing, "/etc/docker/daemon.json", wanted, DOCKER)
    assert merged == {
        "log-driver": "journald",
        "log-opts": {"max-size": "10m", "max-file": 3},
        "registry-mirrors": ["https://m.example"],
    }
    assert json.loads(daemonjson.render(merged)) == merged


def test_daemon_json_invalid_reports_line_and_column():
    with pytest.raises(StepError, match=r"not valid JSON \(line 3 column 3"):
        daemonjson.parse_existing(b'{\n  "a": 1\n  "b": 2\n}\n', "/etc/berth/daemon.json")
    with pytest.raises(StepError, match="JSON object"):
        daemonjson.parse_existing(b"[1]", "/x")
    with pytest.raises(InputError, match="registry-mirrors"):
        daemonjson.validate({"registry-mirrors": "http://not-a-list"}, DOCKER)
    with pytest.raises(InputError, match="registry-mirrors"):
        daemonjson.validate({"registry-mirrors": "http://not-a-list"}, BERTH)


def test_sysctls_only_the_initial_namespace_has_are_skipped_where_absent():
    from provision.steps.kernel import plan_sysctls

    tv = Options().template_vars(detect(CENTOS7))
    live = {k: v for k, v in tv["sysctls"].items() if "neigh" not in k}
    step = plan_sysctls({"sysctl": dict(live, **{"net.ipv4.ip_forward": "0"})}, tv)
    cmds = [a.cmd for a in step.actions if "sysctl -q -w" in getattr(a, "cmd", "")]
    assert cmds == ["sysctl -q -w net.ipv4.ip_forward=1"]
    assert "gc_thresh1" in step.notes[0] and "container host" in step.notes[0]
    kernel = {"net.ipv4.neigh.default.gc_thresh1": "128", "net.ipv4.neigh.default.gc_thresh2": "512",
              "net.ipv4.neigh.default.gc_thresh3": "65536"}
    on_host = plan_sysctls({"sysctl": dict(live, **kernel)}, tv)
    assert [a.cmd for a in on_host.actions if "sysctl -q -w" in getattr(a, "cmd", "")] == [
        "sysctl -q -w net.ipv4.neigh.default.gc_thresh1=8192 net.ipv4.neigh.default.gc_thresh2=32768"]
    assert not on_host.notes


def test_render_strict_and_ansible_compatible():
    p = detect(CENTOS7)
    tv = Options(mirror="http://10.247.1.1:8000", gpgcheck=False).template_vars(p)
    text = render("CentOS-Base.repo.j2", tv).decode()
    assert "baseurl=http://10.247.1.1:8000/centos-vault/7.9.2009/os/$basearch/" in text
    assert "mirrorlist" not in text.replace("mirrorlist.centos.org", "") and "gpgcheck=0" in text
    repo = render("docker-ce.repo.j2", dict(tv, docker_channel="test")).decode()
    assert (
        "[docker-ce-test]\nname=Docker CE Test - $basearch\nbaseurl=http://10.247.1.1:8000/docker-ce/linux/"
        "centos/7/$basearch/test\nenabled=1" in repo
    )
    assert "[docker-ce-edge]" in repo and repo.count("enabled=1") == 2
    sysctl = render("sysctl.conf.j2", tv).decode()
    assert "net.ipv4.ip_forward = 1\n" in sysctl
    assert sysctl.endswith("net.ipv4.neigh.default.gc_thresh3 = 65536\n")
    del tv["vault_base"]
    with pytest.raises(InputError, match="missing variable.*vault_base"):
        render("CentOS-Base.repo.j2", tv)


def test_fact_sections_roundtrip():
    facts = [Fact("a", "echo 1", lambda ls: ls), Fact("b", "false", lambda ls: ls, default="dflt")]
    script = build_script(facts)
    assert "@@berth-fact@@" in script
    out = "\n@@berth-fact@@ a\nx=1\ny\n\n@@berth-fact@@ __end__\n"
    secs = split_sections(out)
    assert parse_sections(facts, secs) == {"a": ["x=1", "y"], "b": "dflt"}
    assert parse_kv(['ID="centos"', "VERSION_ID='7'", "# c"]) == {"ID": "centos", "VERSION_ID": "7"}
    files = parse_files(["@file /a", "absent", "@file /b", "644 0 0", "aGVs", "bG8K"])
    assert files == {"/a": None, "/b": {"mode": 0o644, "uid": 0, "gid": 0, "content": b"hello\n"}}
    mi = parse_mountinfo(
        ["22 1 0:21 / / rw - overlay overlay rw", "30 22 7:0 / /var/lib/berth rw - xfs /dev/loop0 rw"]
    )
    assert mi[1] == ("/var/lib/berth", "xfs", "/dev/loop0")


def test_file_state_diff_and_noop():
    files = {"/etc/x.conf": {"mode": 0o644, "uid": 0, "gid": 0, "content": b"a\nb\n"}}
    assert file_state(files, "/etc/x.conf", b"a\nb\n") is None
    ch = file_state(files, "/etc/x.conf", b"a\nc\n")
    assert ch.diff().splitlines()[2:] == ["@@ -1,2 +1,2 @@", " a", "-b", "+c"]
    assert (
        "mode 0600 -> 0644"
        in file_state({"/y": dict(files["/etc/x.conf"], mode=0o600)}, "/y", b"a\nb\n").diff()
    )
    assert file_state({}, "/new", b"z\n").describe().startswith("create /new")


def test_bad_options_rejected_before_any_host():
    for opts, msg in (
        (Options(engine="podman"), "--engine"),
        (Options(channel="beta"), "--channel"),
        (Options(mirror="htp:/x"), "invalid mirror URL"),
        (Options(daemon_opts=["nokey"]), "KEY=VALUE"),
        (Options(registry_mirrors=["nope"]), "invalid registry mirror URL"),
    ):
        with pytest.raises(InputError, match=msg):
            opts.validate()


def test_facts_script_on_this_machine_reads_what_python_reads(tmp_path):
    """The facts script run for real here (the shell's own ``read`` in place of ``cat``, the data
    root's ancestor by parameter expansion, one ``id`` per user): the same values Python reads."""
    import os

    from provision.facts import gather
    from provision.facts.system import read_file
    from provision.transport import LocalTransport

    opts = Options(
        data_root=str(tmp_path / "not" / "yet"), users=["root", "no-such-user-xyz"], install_engine=False
    )
    facts = gather(LocalTransport(), opts)
    with open("/etc/os-release") as f:
        assert facts["os_release"] == parse_kv(f.read().splitlines())
    assert facts["uname"] == {"release": os.uname().release, "machine": os.uname().machine}
    with open("/proc/1/comm") as f:
        assert facts["init"]["pid1"] == f.read().strip()
    with open("/proc/filesystems") as f:
        assert facts["filesystems"] == {ln.split()[-1] for ln in f if ln.strip()}
    with open("/proc/cmdline") as f:
        assert facts["cmdline"] == f.read().strip()
    st = os.statvfs(tmp_path)
    assert facts["dataroot"]["path"] == str(tmp_path)
    assert abs(int(facts["dataroot"]["avail_kb"]) - st.f_bavail * st.f_frsize // 1024) < 100 * 1024
    assert facts["users"] == {"root": ["root"], "no-such-user-xyz": None}
    # sysctls of several digits whole (the shell's `read` got the first byte of a /proc/sys file)
    from provision.facts.system import sysctl_path

    assert "net.ipv4.neigh.default.gc_thresh3" in facts["sysctl"]
    for key, value in facts["sysctl"].items():
        with open(sysctl_path(key)) as f:
            assert value == f.read().strip(), key
    # a last line without its newline is kept
    (tmp_path / "f").write_bytes(b"a b\n\n  c\\d")
    out = LocalTransport().run(read_file(str(tmp_path / "f"))).stdout
    assert out == "a b\n\n  c\\d\n"
