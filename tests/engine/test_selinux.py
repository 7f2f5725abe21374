"""SELinux labels as dockerd decides them (runtime/container/selinux.py): the labels a container
gets from the policy's lxc_contexts and its label options, unique MCS levels, the refusals, and
`:z`/`:Z` relabelling of real files. This machine's kernel runs no SELinux: the labels are
decided here against a labeller made from an lxc_contexts file (below the line: the kernel
applying them, which tests/powercut/test_selinux.py proves in a VM running SELinux), and
relabelling writes the security.selinux attribute, which ext4 and tmpfs keep without an LSM."""

import os
import random

import pytest

from runtime.container import selinux
from runtime.errors import InvalidParameter

PROCESS = "system_u:system_r:container_t:s0"
FILE = "system_u:object_r:container_file_t:s0"
LXC = '''process = "system_u:system_r:container_t:s0"
content = "system_u:object_r:virt_var_lib_t:s0"
file = "system_u:object_r:container_file_t:s0"
ro_file="system_u:object_r:container_ro_file_t:s0"
sandbox_kvm_process = "system_u:system_r:container_kvm_t:s0"
'''


def _labeler(seed=7):
    return selinux.Labeler(PROCESS, FILE, rng=random.Random(seed))


def _label(path):
    return os.getxattr(path, selinux.XATTR, follow_symlinks=False).decode()


def test_policy_files_are_read_as_go_selinux_reads_them(tmp_path):
    config = tmp_path / "config"
    config.write_text("# comment\nSELINUX=enforcing\nSELINUXTYPE=targeted\n")
    assert selinux.policy_root(str(config)) == str(tmp_path / "targeted")
    config.write_text("SELINUX=permissive\n")  # no type: targeted
    assert selinux.policy_root(str(config)) == str(tmp_path / "targeted")
    config.write_text('SELINUXTYPE="mls"\n')
    assert selinux.policy_root(str(config)) == str(tmp_path / "mls")
    lxc = tmp_path / "lxc_contexts"
    lxc.write_text(LXC)
    ctx = selinux.read_contexts(str(lxc))
    assert (ctx["process"], ctx["file"], ctx["ro_file"]) == (PROCESS, FILE,
                                                             "system_u:object_r:container_ro_file_t:s0")


def test_labels_are_unique_pairs_of_categories_until_released():
    lab = _labeler()
    seen = set()
    for _ in range(300):
        process, mount = lab.labels([])
        pcon, mcon = selinux.split(process), selinux.split(mount)
        assert (pcon["user"], pcon["role"], pcon["type"]) == ("system_u", "system_r", "container_t")
        assert (mcon["role"], mcon["type"]) == ("object_r", "container_file_t")
        assert pcon["level"] == mcon["level"]
        sens, cats = pcon["level"].split(":")
        a, b = cats.split(",")
        assert sens == "s0" and a[0] == b[0] == "c" and int(a[1:]) < int(b[1:]) < selinux.CATEGORIES
        assert pcon["level"] not in seen
        seen.add(pcon["level"])
    assert len(lab.taken) == 300
    lab.release(process)
    assert len(lab.taken) == 299 and selinux.level_of(process) not in lab.taken


def test_a_level_two_containers_share_is_held_until_both_are_gone():
    lab = _labeler()
    process, _ = lab.labels([])
    other, _ = lab.labels(selinux.duplicate(process))  # --ipc container:first
    assert other == process
    lab.release(process)
    assert selinux.level_of(process) in lab.taken
    lab.release(other)
    assert lab.taken == {}


def test_label_options_as_dockerd_applies_them():
    lab = _labeler()
    process, mount = lab.labels(["level:s0:c100,c200"])
    assert process == "system_u:system_r:container_t:s0:c100,c200"
    assert mount == "system_u:object_r:container_file_t:s0:c100,c200"
    assert "s0:c100,c200" in lab.taken
    process, mount = lab.labels(["type:spc_t", "filetype:container_ro_file_t"])
    assert selinux.split(process)["type"] == "spc_t"
    assert selinux.split(mount)["type"] == "container_ro_file_t"
    assert selinux.level_of(process) == selinux.level_of(mount)
    process, mount = lab.labels(["user:user_u", "role:user_r"])
    assert selinux.split(process)["user"] == selinux.split(mount)["user"] == "user_u"
    assert selinux.split(process)["role"] == "user_r" and selinux.split(mount)["role"] == "object_r"
    before = dict(lab.taken)
    assert lab.labels(["disable"]) == ("", FILE)  # unlabelled process, the shared file label
    assert lab.taken == before


@pytest.mark.parametrize("options", [["bogus"], ["type"], ["type:"], ["colour:red"], ["level:s0", "nope"]])
def test_bad_label_options_are_refused(options):
    lab = _labeler()
    with pytest.raises(InvalidParameter) as e:
        lab.labels(options)
    assert "Bad label option" in str(e.value) and "label=type:container_t" in str(e.value)
    assert lab.taken == {}


def test_no_labeller_where_the_kernel_runs_no_policy(tmp_path):
    assert selinux.Labeler.at_start(False) == (None, "")
    # this machine: no SELinux in the kernel (or a selinuxfs with no policy: label "kernel")
    lab, why = selinux.Labeler.at_start(True, selinuxfs=str(tmp_path / "none"))
    assert lab is None and "runs no SELinux policy" in why
    assert not selinux.host_enabled(str(tmp_path / "none"))


def test_relabel_walks_the_tree_without_following_symlinks(tmp_path):
    src = tmp_path / "vol"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("x")
    outside = tmp_path / "outside"
    outside.write_text("keep")
    (src / "link").symlink_to(outside)
    label = "system_u:object_r:container_file_t:s0:c1,c2"
    selinux.relabel(str(src), label, False)  # :Z
    for p in (src, src / "sub", src / "sub" / "f", src / "link"):
        assert _label(p) == label, p
    with pytest.raises(OSError):
        _label(outside)
    selinux.relabel(str(src), label, True)  # :z: the level without categories
    assert {_label(p) for p in (src, src / "sub", src / "sub" / "f")} == {FILE}
    ctime = os.stat(src / "sub" / "f").st_ctime_ns
    selinux.relabel(str(src), label, True)  # already so: nothing written
    assert os.stat(src / "sub" / "f").st_ctime_ns == ctime


@pytest.mark.parametrize("path", ["/", "/usr", "/etc", "/home/someone", "/var/lib"])
def test_relabel_refuses_the_hosts_system_dirs(path):
    with pytest.raises(InvalidParameter) as e:
        selinux.relabel(path, "system_u:object_r:container_file_t:s0:c1,c2", False)
    assert "relabeling of %s is not allowed" % path in str(e.value)


def test_containers_get_labels_as_dockerd_gives_them(clean_containers, monkeypatch):
    """A real engine with a labeller (what it makes at start on a host running SELinux with
    container-selinux): each container's ProcessLabel and MountLabel in inspect, unlabelled
    privileged and host-IPC ones, another's label for --ipc container:, the level back at rm."""
    eng = clean_containers
    lab = _labeler()
    monkeypatch.setattr(eng.container_service, "selinux", lab)
    assert "name=selinux" in eng.system_info()["SecurityOptions"]  # from the labeller itself

    def create(**hc):
        cid = eng.container_create({"Image": "busybox:latest", "Cmd": ["true"], "HostConfig": hc})["Id"]
        info = eng.container_inspect(cid)
        return cid, info["ProcessLabel"], info["MountLabel"]

    first, process, mount = create()
    types = (selinux.split(process)["type"], selinux.split(mount)["type"])
    assert types == ("container_t", "container_file_t")
    assert selinux.level_of(process) == selinux.level_of(mount) != "s0"
    second, process2, _ = create()
    assert selinux.level_of(process2) != selinux.level_of(process)
    assert create(Privileged=True)[1:] == ("", FILE)
    assert create(IpcMode="host")[1:] == ("", FILE)
    assert create(IpcMode="container:" + first)[1] == process
    assert create(SecurityOpt=["label=level:s0:c7,c9"])[1] == "system_u:system_r:container_t:s0:c7,c9"
    assert create(SecurityOpt=["label=disable"])[1:] == ("", FILE)
    held = len(lab.taken)
    eng.container_remove(second)
    assert len(lab.taken) == held - 1 and selinux.level_of(process2) not in lab.taken
    with pytest.raises(InvalidParameter) as e:
        create(SecurityOpt=["label=colour:red"])
    assert "Bad label option" in str(e.value)
    for c in eng.container_list(all=True):
        eng.container_remove(c["Id"])
    assert lab.taken == {}


def test_a_volume_is_labelled_for_containers_once(tmp_path):
    vol = tmp_path / "_data"
    (vol / "d").mkdir(parents=True)
    selinux.label_volume(str(vol), FILE)
    assert _label(vol) == _label(vol / "d") == FILE
    private = FILE + ":c3,c4"
    selinux.relabel(str(vol), private, False)  # a container's :Z
    selinux.label_volume(str(vol), FILE)  # already a container file: kept
    assert _label(vol / "d") == private
