"""SELinux labels on a kernel that runs SELinux: berthd of the committed tree, with daemon.json
`selinux-enabled`, in the package's Debian 12 guest (booted `security=selinux`: this machine's
kernel has no SELinux). Debian ships no container policy, so the test loads a minimal one of
its own (container_labels.cil, compiled here with secilc) in permissive mode, with an
lxc_contexts naming container_t and container_file_t as container-selinux's does: below the
line of this test (which is that berthd asks for the right labels and the kernel applies them,
not what a policy allows). Runs last in the package: a loaded policy stays until the next boot."""

import json
import re
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(1800)]

POLICY = __file__.rsplit("/", 1)[0] + "/container_labels.cil"
PROCESS = "system_u:system_r:container_t:s0"
FILE = "system_u:object_r:container_file_t:s0"
LXC_CONTEXTS = (f'process = "{PROCESS}"\nfile = "{FILE}"\n'
                'ro_file = "system_u:object_r:container_ro_file_t:s0"\n')
MCS = re.compile(r"^s0:c(\d+),c(\d+)$")
DAEMON_JSON = "/etc/berth/daemon.json"
RESTART = ("systemctl stop berthd; rm -f /run/berth.sock; systemctl start berthd; "
           "t=$(($(date +%s) + 900)); while [ $(date +%s) -lt $t ]; do "
           "[ -S /run/berth.sock ] && berth version >/dev/null 2>&1 && exit 0; sleep 1; done; "
           "journalctl -u berthd -n 20 --no-pager; exit 1")
# `python3 - on|off`: daemon.json with selinux-enabled set, or without it
SET_KEY = f"""import json, sys
with open("{DAEMON_JSON}") as f:
    d = json.load(f)
d.pop("selinux-enabled", None)
if sys.argv[1] == "on":
    d["selinux-enabled"] = True
with open("{DAEMON_JSON}", "w") as f:
    json.dump(d, f)
""".encode()

# The scenario, run in the guest in one go (each berth command is a Python start under
# emulation); it prints one JSON object of what it saw.
SCENARIO = r'''
import json, os, subprocess
out = {}
def berth(*args):
    p = subprocess.run(("berth",) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=600)
    return [p.returncode, p.stdout.strip("\0\n "), p.stderr.strip()]  # attr files end in NUL
def label(path):
    try:
        return os.getxattr(path, "security.selinux", follow_symlinks=False).rstrip(b"\0").decode()
    except OSError as e:
        return "error: %s" % e
def current(pid):
    with open("/proc/%s/attr/current" % pid) as f:
        return f.read().rstrip("\0\n")
for d in ("/root/volZ", "/root/volz"):
    os.makedirs(d + "/sub", exist_ok=True)
before = set(berth("ps", "-aq")[1].split())  # the power-cut campaign's, kept
out["info"] = berth("info", "--format", "json")
out["run"] = berth("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/attr/current")
out["sa"] = berth("run", "-d", "--name", "sa", "--network", "none", "-v", "/root/volZ:/z:Z",
                  "-v", "/root/volz:/s:z", "-v", "selvol:/v", "busybox", "sleep", "600")
out["sb"] = berth("run", "-d", "--name", "sb", "--network", "none", "busybox", "sleep", "600")
for name in ("sa", "sb"):
    info = json.loads(berth("inspect", name)[1])[0]
    pid = info["State"]["Pid"]
    root = "/proc/%d/root" % pid
    out[name + "_inspect"] = [info["ProcessLabel"], info["MountLabel"]]
    out[name + "_pid1"] = current(pid)
    out[name + "_files"] = {p: label(root + p) for p in ("/bin/busybox", "/etc", "/dev", "/dev/null",
                                                        "/dev/shm", "/dev/pts", "/etc/hostname")}
out["volZ"] = [label("/root/volZ"), label("/root/volZ/sub")]
out["volz"] = [label("/root/volz"), label("/root/volz/sub")]
mp = json.loads(berth("volume", "inspect", "selvol")[1])[0]["Mountpoint"]
out["named"] = label(mp)
out["exec"] = berth("exec", "sa", "cat", "/proc/self/attr/current")
out["privileged"] = berth("run", "--rm", "--privileged", "--network", "none", "busybox", "cat",
                          "/proc/self/attr/current")
out["level"] = berth("run", "--rm", "--network", "none", "--security-opt", "label=level:s0:c100,c200",
                     "busybox", "cat", "/proc/self/attr/current")
out["bad_type"] = berth("run", "--rm", "--network", "none", "--security-opt", "label=type:nosuch_t",
                        "busybox", "true")
out["system_dir"] = berth("run", "--rm", "--network", "none", "-v", "/usr:/x:z", "busybox", "true")
out["bad_option"] = berth("create", "--security-opt", "label=colour:red", "busybox")
berth("rm", "-f", "sa", "sb")
berth("volume", "rm", "selvol")
out["left"] = sorted(set(berth("ps", "-aq")[1].split()) - before)
print(json.dumps(out))
'''


def _compile(tmp_path) -> bytes:
    cats = [f"c{i}" for i in range(1024)]
    decls = "\n".join(f"(category {c})" for c in cats) + "\n(categoryorder (%s))" % " ".join(cats)
    src = tmp_path / "policy.cil"
    src.write_text(open(POLICY).read().replace("@CATEGORIES@", decls))
    subprocess.run(["secilc", "-M", "true", "-c", "31", "-o", str(tmp_path / "policy.31"), "-f", "/dev/null",
                    str(src)], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return (tmp_path / "policy.31").read_bytes()


@pytest.fixture
def labelling_guest(lab_vm, tmp_path):
    """The package's guest with the test policy loaded (permissive) and berthd restarted with
    selinux-enabled; afterwards daemon.json and /etc/selinux as they were, berthd restarted."""
    if not shutil.which("secilc"):
        pytest.skip("secilc is needed to compile the test policy (tests/run.sh installs it)")
    vm = lab_vm[0]
    lsm = vm.ssh("cat /sys/kernel/security/lsm; echo; ls /sys/fs/selinux/enforce").stdout
    assert "selinux" in lsm, lsm  # the guest's kernel command line asks for it (machine.APPEND)
    vm.ssh("cat > /root/policy.31", input=_compile(tmp_path))
    vm.ssh("cat /root/policy.31 > /sys/fs/selinux/load && [ \"$(cat /sys/fs/selinux/enforce)\" = 0 ]")
    vm.ssh("mkdir -p /etc/selinux/berthtest/contexts && "
           "printf 'SELINUX=permissive\\nSELINUXTYPE=berthtest\\n' > /etc/selinux/config && "
           "cat > /etc/selinux/berthtest/contexts/lxc_contexts", input=LXC_CONTEXTS.encode())
    vm.ssh("python3 - on", input=SET_KEY)
    vm.ssh(RESTART, timeout=960)
    try:
        yield vm
    finally:
        vm.ssh("python3 - off", input=SET_KEY)
        vm.ssh("rm -rf /etc/selinux /root/volZ /root/volz; " + RESTART, timeout=960)


def test_containers_run_labelled(labelling_guest):
    vm = labelling_guest
    res = vm.ssh("python3 -", input=SCENARIO.encode(), timeout=1500)
    assert res.stdout.strip().startswith("{"), (res.stdout[-2000:], res.stderr[-2000:])
    seen = json.loads(res.stdout)
    print(json.dumps(seen, indent=1))  # (shown when an assertion fails)
    assert "name=selinux" in json.loads(seen["info"][1])["SecurityOptions"], seen["info"]
    code, label, err = seen["run"]
    assert code == 0 and label.startswith(PROCESS + ":") and MCS.match(label[len(PROCESS) - 2:]), seen["run"]
    levels = set()
    for name in ("sa", "sb"):
        process, mount = seen[name + "_inspect"]
        level = process[len(PROCESS) - 2:]
        assert process == PROCESS[:-2] + level and mount == FILE[:-2] + level and MCS.match(level), process
        assert seen[name + "_pid1"] == process  # what the kernel says PID 1 runs as
        # the root (overlay), /dev, /dev/shm, /dev/pts (tmpfs, devpts) and the bound /etc files
        assert set(seen[name + "_files"].values()) == {mount}, seen[name + "_files"]
        levels.add(level)
    assert len(levels) == 2  # each container its own categories
    process, mount = seen["sa_inspect"]
    assert seen["volZ"] == [mount, mount]  # :Z, private to sa
    assert seen["volz"] == [FILE, FILE]  # :z, shared: s0 without categories
    assert seen["named"] == FILE  # berthd's own volumes: shared
    assert seen["exec"][:2] == [0, process]  # an exec'd process gets the container's label
    code, label, _ = seen["privileged"]
    assert code == 0 and label and "container_t" not in label, seen["privileged"]
    assert seen["level"][:2] == [0, PROCESS[:-2] + "s0:c100,c200"], seen["level"]
    code, _, err = seen["bad_type"]
    assert code != 0 and "cannot apply label system_u:system_r:nosuch_t:s0:c" in err, seen["bad_type"]
    code, _, err = seen["system_dir"]
    assert code != 0 and "relabeling of /usr is not allowed" in err, seen["system_dir"]
    code, _, err = seen["bad_option"]
    assert code != 0 and "Bad label option 'colour:red'" in err, seen["bad_option"]
    assert seen["left"] == [], seen["left"]  # every container made here is gone
