"""templates/ is the one source: Ansible (playbooks/) renders every template to the same bytes
provision does, and the playbook itself is valid."""

import json
import os
import subprocess
import sys

import pytest

from provision.distros import detect
from provision.options import Options
from provision.render import render
from tests.provision.labutil import ROOT

TEMPLATES = [
    "modules-load.conf.j2",
    "sysctl.conf.j2",
    "CentOS-Base.repo.j2",
    "docker-ce.repo.j2",
    "sources.list.j2",
]


def ansible_env(tmp_path):
    return dict(
        os.environ,
        ANSIBLE_HOME=str(tmp_path / "ah"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ah/tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )


@pytest.mark.parametrize(
    "os_release",
    [
        {"ID": "centos", "VERSION_ID": "7", "PRETTY_NAME": "CentOS Linux 7 (Core)"},
        {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"},
    ],
)
def test_ansible_renders_the_same_bytes(tmp_path, os_release):
    plat = detect(os_release)
    tvars = Options(mirror="http://10.9.8.7:8080/m", gpgcheck=False, channel="test").template_vars(plat)
    (tmp_path / "vars.json").write_text(json.dumps(tvars))
    out = tmp_path / "out"
    out.mkdir()
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "ansible.builtin.template": {
                        "src": str(ROOT / "templates" / t),
                        "dest": str(out / t),
                        "mode": "0644",
                    }
                }
                for t in TEMPLATES
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    p = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-e",
            f"@{tmp_path / 'vars.json'}",
            str(tmp_path / "play.yml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ansible_env(tmp_path),
        cwd=tmp_path,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-3000:]
    for t in TEMPLATES:
        assert (out / t).read_bytes() == render(t, tvars), t


def test_playbook_is_valid(tmp_path):
    p = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", str(ROOT / "playbooks/host.yml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ansible_env(tmp_path),
        timeout=120,
    )
    assert p.returncode == 0, p.stdout


def test_site_playbook_is_valid_and_lint_clean(tmp_path):
    env = dict(ansible_env(tmp_path), PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    p = subprocess.run(
        ["ansible-playbook", "--syntax-check", "-i", "localhost,", str(ROOT / "playbooks/site.yml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout
    p = subprocess.run(
        ["ansible-lint", "--nocolor", "--format=pep8", "playbooks"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:]


def test_role_variables_are_the_inventory_names():
    """One inventory drives both tools: every berth_* variable provision reads is a documented
    default of the role, and the role has no other host-facing variable."""
    import yaml

    from provision.hostvars import BERTH_VARS, ROLE_ONLY

    defaults = yaml.safe_load((ROOT / "playbooks/roles/berth/defaults/main.yml").read_text())
    text = (ROOT / "playbooks/roles/berth/defaults/main.yml").read_text()
    provision_only = {"berth_distro_like", "berth_min_free_gb", "berth_docker_version"}
    assert set(defaults) == (set(BERTH_VARS) - provision_only) | ROLE_ONLY
    for name in defaults:  # each is documented by a comment above it
        before = text[: text.index(f"\n{name}:")].rstrip().splitlines()[-1]
        assert before.startswith("#") or before.startswith("berth_"), name
