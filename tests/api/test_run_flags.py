"""`berth run`/`berth create` flags for the process, devices, namespaces, limits and mounts,
through a real berthd, beside the docker CLI sending the same flags; create warnings on
stderr as docker shows them."""

import json
import os

import pytest

from runtime.cli import opts
from runtime.cli.run import UsageError, container_config, parser_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def _config(*argv):
    p = opts.Parser("berth run", add_help=False)
    p.add_argument("--help", action="help")
    parser_run(p)
    return container_config(p.parse_args(list(argv) + ["busybox"]))


def test_flags_make_docker_s_host_config(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=1\n\nB=two words\n")
    label_file = tmp_path / "labels"
    label_file.write_text("k1=v1\nk2=v2\n")
    c = _config("--ulimit", "nofile=512:1024", "--ulimit", "nproc=64", "--device", "/dev/null:/dev/xnull:rw",
                "--device", "/dev/zero", "--device-cgroup-rule", "c 42:* rmw", "--init", "--pid", "host",
                "--ipc", "shareable", "--uts", "host", "--sysctl", "kernel.msgmax=4096",
                "--oom-score-adj", "300", "--cpuset-cpus", "0", "--memory-reservation", "32m",
                "--mount", "type=bind,src=/tmp,dst=/h,readonly,bind-propagation=rprivate",
                "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700", "--tmpfs", "/run:size=64k",
                "--read-only", "--cap-add", "SYS_TIME", "--cap-drop", "CHOWN", "--privileged",
                "--label", "k2=override", "--label-file", str(label_file), "--env-file", str(env_file),
                "-e", "C=3", "--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--shm-size", "128m",
                "--group-add", "audio", "--volumes-from", "other:ro", "--cgroupns", "private",
                "--device-read-bps", "/dev/vda:1mb", "--memory-swappiness", "10", "--oom-kill-disable")
    h = c["HostConfig"]
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 512, "Hard": 1024},
                            {"Name": "nproc", "Soft": 64, "Hard": 64}]
    assert h["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rw"},
        {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero", "CgroupPermissions": "rwm"}]
    assert h["DeviceCgroupRules"] == ["c 42:* rmw"]
    assert (h["Init"], h["PidMode"], h["IpcMode"], h["UTSMode"]) == (True, "host", "shareable", "host")
    assert h["Sysctls"] == {"kernel.msgmax": "4096"} and h["OomScoreAdj"] == 300
    assert h["CpusetCpus"] == "0" and h["MemoryReservation"] == 32 << 20
    assert h["Mounts"] == [
        {"Type": "bind", "Source": "/tmp", "Target": "/h", "ReadOnly": True,
         "BindOptions": {"Propagation": "rprivate"}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}}]
    assert h["Tmpfs"] == {"/run": "size=64k"} and h["ReadonlyRootfs"] is True
    assert h["CapAdd"] == ["SYS_TIME"] and h["CapDrop"] == ["CHOWN"] and h["Privileged"] is True
    assert h["ShmSize"] == 128 << 20 and h["GroupAdd"] == ["audio"] and h["VolumesFrom"] == ["other:ro"]
    assert h["CgroupnsMode"] == "private" and h["MemorySwappiness"] == 10 and h["OomKillDisable"] is True
    assert h["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": 1 << 20}]
    assert c["Labels"] == {"k1": "v1", "k2": "override"}
    assert c["Env"] == ["A=1", "B=two words", "C=3"]
    assert c["StopSignal"] == "SIGUSR1" and c["StopTimeout"] == 7


@pytest.mark.parametrize("argv,needle", [
    (("--ulimit", "nofile"), "--ulimit"), (("--ulimit", "nofile=x:1"), "--ulimit"),
    (("--mount", "type=bind,src=/tmp"), "target is required"),
    (("--mount", "type=tmpfs,dst=/x,bogus=1"), "bogus"),
    (("--device", ""), "--device"), (("--env-file", "/nonexistent/env"), "--env-file"),
    (("--device-read-bps", "nocolon"), "--device-read-bps"),
])
def test_bad_flag_values_are_one_line_usage_errors(argv, needle):
    with pytest.raises(UsageError) as err:
        _config(*argv)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_berth_run_applies_the_flags(loaded, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=yes\n")
    script = ("cat /proc/1/comm; ulimit -n; cat /proc/sys/kernel/msgmax; cat /proc/self/oom_score_adj; "
              "ls -l /dev/xnull; touch /x 2>&1; id -G; echo $FROM_FILE; grep ' /tt ' /proc/mounts")
    out = loaded.berth("run", "--rm", "--network", "none", "--init", "--ulimit", "nofile=512:1024",
                       "--sysctl", "kernel.msgmax=4096", "--oom-score-adj", "300",
                       "--device", "/dev/null:/dev/xnull:rw", "--read-only", "--group-add", "1234",
                       "--env-file", str(env_file), "--tmpfs", "/tt:size=1m", "busybox", "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[:4] == ["berth-init", "512", "4096", "300"]
    assert "1,   3" in lines[4] and "Read-only file system" in lines[5]
    assert "1234" in lines[6].split() and lines[7] == "yes" and "size=1024k" in lines[8]


def test_berth_run_shows_create_warnings_on_stderr(loaded):
    out = loaded.berth("run", "--rm", "--network", "none", "--oom-kill-disable", "busybox", "true")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.decode().splitlines() if line.startswith("WARNING: ")]
    assert warnings and any("OomKillDisable" in w or "OOM killer" in w for w in warnings), out.stderr
    docker = loaded.docker("run", "--rm", "--network", "none", "--oom-kill-disable", "busybox", "true")
    assert docker.returncode == 0, docker.stderr
    assert any(w.encode() in docker.stderr for w in (x[len("WARNING: "):] for x in warnings)), docker.stderr


def test_berth_create_prints_the_id_and_keeps_the_fields(loaded):
    out = loaded.berth("create", "--name", "hcf-create", "--network", "none", "--ulimit", "nofile=100:200",
                       "--cpuset-cpus", "0", "--pid", "host", "busybox", "true")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.decode().strip()
    assert len(cid) == 64
    info = json.loads(loaded.berth("inspect", "hcf-create").stdout.decode())[0]
    assert info["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}]
    assert info["HostConfig"]["CpusetCpus"] == "0" and info["HostConfig"]["PidMode"] == "host"
    assert loaded.berth("rm", "hcf-create").returncode == 0
    bad = loaded.berth("create", "--sysctl", "kernel.panic=1", "busybox", "true")
    assert bad.returncode == 125 and b"not in a separate kernel namespace" in bad.stderr


def test_docker_cli_sends_the_same_flags(loaded):
    out = loaded.docker("run", "--rm", "--network", "none", "--init", "--ulimit", "nofile=256:512",
                        "--sysctl", "kernel.shmmni=2048", "--cap-drop", "CHOWN", "--pid", "host", "busybox",
                        "sh", "-c", "cat /proc/self/comm; ulimit -Hn; cat /proc/sys/kernel/shmmni; "
                        "readlink /proc/self/ns/pid; chown 1 /etc/passwd 2>&1; true")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[1:4] == ["512", "2048", os.readlink("/proc/self/ns/pid")]
    assert "not permitted" in lines[4]
