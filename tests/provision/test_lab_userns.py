"""`provision host --userns-remap`: the berth user, its subordinate ranges beside existing ones,
the user.max_user_namespaces sysctl and daemon.json, on a lab host over SSH, then a rerun that
changes nothing; the plan on a CentOS 7-like host whose user namespaces are off (0)."""

import json

import pytest

from provision.distros import detect
from provision.options import Options
from provision.plan import build_plan
from provision.steps.base import Command
from tests.provision.labutil import known_hosts, provision_json, ssh_args


@pytest.mark.lab
def test_userns_remap_on_a_lab_host_then_rerun_changes_nothing(plab, tmp_path):
    (h,) = plab.up(1)
    kh = known_hosts([h], tmp_path / "known_hosts")
    h.exec("echo 'someone:100000:65536' > /etc/subuid && : > /etc/subgid")  # a range already taken
    args = ["host", "--no-install", h.ip, "--userns-remap", "default", *ssh_args([h], kh)]
    rc, reps = provision_json(*args)
    assert rc == 0, reps
    assert reps[h.ip]["status"] == "changed", reps
    assert h.ssh("getent passwd berth").stdout.split(":")[6].strip() == "/bin/false"
    assert h.ssh("cat /etc/subuid").stdout == "someone:100000:65536\nberth:165536:65536\n"
    assert h.ssh("cat /etc/subgid").stdout == "berth:165536:65536\n"
    live = h.ssh("sysctl -n user.max_user_namespaces").stdout.strip()
    assert (
        f"user.max_user_namespaces = {max(int(live), 15000)}"
        in h.ssh("cat /etc/sysctl.d/99-berth.conf").stdout
    )
    assert json.loads(h.ssh("cat /etc/berth/daemon.json").stdout)["userns-remap"] == "default"
    rc, reps = provision_json(*args)
    assert rc == 0 and reps[h.ip]["changed"] == 0, reps
    rc, reps = provision_json(
        "host", "--no-install", h.ip, "--userns-remap", "nobodyhere", *ssh_args([h], kh)
    )
    assert rc == 1 and "userns-remap user 'nobodyhere' does not exist" in json.dumps(reps), reps


def test_plan_raises_max_user_namespaces_where_it_is_0():
    facts = {"sysctl": {"user.max_user_namespaces": "0"}, "users": {"berth": None}, "files": {}}
    plat = detect({"ID": "centos", "VERSION_ID": "7"}, None)
    plan = build_plan(facts, plat, Options(userns_remap="default", install_engine=False))
    cmds = [a.cmd for step in plan for a in step.actions if isinstance(a, Command)]
    assert any("user.max_user_namespaces=15000" in c for c in cmds), cmds
    assert any(c.startswith("useradd --system") and c.endswith(" berth") for c in cmds), cmds
    steps = {s.name: s for s in plan}
    assert [a.path for a in steps["userns-remap"].actions[1:]] == ["/etc/subuid", "/etc/subgid"]
