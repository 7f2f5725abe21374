"""Ansible inventories, --limit patterns, host variables, --serial batches: parsed without a host."""

import json

import pytest

from provision.apply import HostReport, Job
from provision.errors import InputError
from provision.fleet import batch_failed, batches, parse_serial, run_each
from provision.hostvars import fleet_jobs
from provision.inventory import expand, load
from provision.options import Options
from provision.patterns import select
from provision.ssh import SSHOptions

INI = """\
# a comment
bastion ansible_host=192.0.2.1 ansible_port=2222

[web]
web[01:04] ansible_user=deploy
web05:2200

[db]
db-[a:c] berth_gid=2400

[prod:children]
web
db

[prod:vars]
berth_mirror=aliyun
berth_registry_mirrors=https://m1.example.com,https://m2.example.com
berth_install_engine=no

[web:vars]
berth_mirror=tencent
"""

YAML = """\
all:
  vars:
    berth_channel: test
  hosts:
    bastion:
      ansible_host: 192.0.2.1
      ansible_port: 2222
  children:
    prod:
      vars:
        berth_mirror: aliyun
        berth_registry_mirrors: [https://m1.example.com, https://m2.example.com]
        berth_install_engine: false
      children:
        web:
          hosts:
            web[01:04]:
              ansible_user: deploy
            web05:
              ansible_port: 2200
          vars:
            berth_mirror: tencent
        db:
          hosts:
            db-[a:c]:
              berth_gid: 2400
"""


@pytest.fixture(params=["ini", "yaml"])
def inv(request, tmp_path):
    name = "hosts" if request.param == "ini" else "hosts.yml"
    (tmp_path / name).write_text(INI if request.param == "ini" else YAML)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "db.yml").write_text("berth_users: [alice, bob]\nberth_gid: 2401\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "web03").mkdir()
    (tmp_path / "host_vars" / "web03" / "main.yml").write_text("berth_mirror: ustc\nansible_user: ops\n")
    return load(str(tmp_path / name))


def test_ranges():
    assert expand("web[01:03]") == ["web01", "web02", "web03"]
    assert expand("h[1:10:4]") == ["h1", "h5", "h9"]
    assert expand("db-[a:c].x") == ["db-a.x", "db-b.x", "db-c.x"]
    assert expand("r[1:2]c[a:b]") == ["r1ca", "r1cb", "r2ca", "r2cb"]
    with pytest.raises(InputError, match="bad host range"):
        expand("web[3:1]")


def test_hosts_groups_and_children(inv):
    names = ["bastion", "web01", "web02", "web03", "web04", "web05", "db-a", "db-b", "db-c"]
    assert list(inv.hosts) == names
    assert inv.members("prod") == names[1:]
    assert inv.members("db") == ["db-a", "db-b", "db-c"]
    assert inv.groups_of("web01") == ["all", "prod", "web"]


def test_variable_precedence(inv):
    # child group over parent, group_vars over the inventory's own group vars, host_vars last
    assert inv.host_vars("web01")["berth_mirror"] == "tencent"
    assert inv.host_vars("web03")["berth_mirror"] == "ustc"
    assert inv.host_vars("web03")["ansible_user"] == "ops"
    assert inv.host_vars("db-a")["berth_mirror"] == "aliyun"
    assert inv.host_vars("db-a")["berth_users"] == ["alice", "bob"]
    assert inv.host_vars("db-a")["berth_gid"] == 2400  # inline host variable over group_vars
    assert inv.host_vars("web05")["ansible_port"] == 2200
    assert "berth_mirror" not in inv.host_vars("bastion")


@pytest.mark.parametrize(
    "pattern, hosts",
    [
        (None, "bastion web01 web02 web03 web04 web05 db-a db-b db-c"),
        ("web", "web01 web02 web03 web04 web05"),
        ("web:&prod:!web03", "web01 web02 web04 web05"),
        ("!web03:web:&prod", "web01 web02 web04 web05"),  # order of terms does not matter
        ("prod:!db", "web01 web02 web03 web04 web05"),
        ("web*,db-b", "web01 web02 web03 web04 web05 db-b"),
        ("~db-[ab]", "db-a db-b"),
        ("web[0]:db[-1]", "web01 db-c"),
        ("web[1:3]", "web02 web03 web04"),
        ("!prod", "bastion"),
        ("bastion", "bastion"),
    ],
)
def test_limit(inv, pattern, hosts):
    assert select(inv, pattern) == hosts.split()


def test_limit_refuses_what_matches_nothing(inv, tmp_path):
    with pytest.raises(InputError, match="'web3' matches no group or host"):
        select(inv, "web:!web3")  # a typo must not widen a rollout
    with pytest.raises(InputError, match="leave no host"):
        select(inv, "web:&db")
    f = tmp_path / "list"
    f.write_text("web02\ndb-c\n")
    assert select(inv, f"@{f}") == ["web02", "db-c"]


def test_host_variables_become_jobs(inv):
    base = Job(Options(daemon_opts=["debug=true"]), SSHOptions(identities=["/k/default"]))
    jobs = fleet_jobs(inv, list(inv.hosts), base)
    assert jobs["bastion"].address == "192.0.2.1:2222"
    assert jobs["web01"].address == "deploy@web01"
    assert jobs["web03"].address == "ops@web03"
    assert jobs["web05"].address == "web05:2200"
    assert jobs["bastion"].opts.mirror is None and jobs["bastion"].opts.install_engine
    web = jobs["web01"].opts
    assert web.mirror == "tencent" and web.install_engine is False
    assert web.registry_mirrors == ["https://m1.example.com", "https://m2.example.com"]
    db = jobs["db-b"].opts
    assert (db.gid, db.users, db.mirror) == (2400, ["alice", "bob"], "aliyun")
    assert base.opts.mirror is None  # the command line's defaults are not changed


def test_host_connection_and_daemon_json(tmp_path):
    (tmp_path / "inv.yml").write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "a": {
                            "ansible_host": "fd00::5",
                            "ansible_port": 22,
                            "ansible_ssh_private_key_file": "/k/a",
                            "ansible_become_password": "s3cret",
                            "berth_daemon_json": {"log-opts": {"max-size": "5m"}},
                        }
                    }
                }
            }
        )
    )
    base = Job(Options(daemon_opts=['log-opts.max-file="3"']), SSHOptions(identities=["/k/default"]))
    job = fleet_jobs(load(str(tmp_path / "inv.yml")), ["a"], base)["a"]
    assert job.address == "[fd00::5]:22"
    assert job.ssh.identities == ["/k/a", "/k/default"] and job.ssh.become_password == "s3cret"
    assert job.opts.wanted_daemon_json() == {"log-opts": {"max-file": "3", "max-size": "5m"}}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[web]\nh1 berth_mirrror=aliyun\n", "unknown variable berth_mirrror"),
        ("[web]\nh1 berth_gid=abc\n", "berth_gid must be int"),
        ("[web]\nh1 berth_mirror=ftp://x\n", "inventory host h1: "),
        ("[web]\nh1 ansible_connection=winrm\n", "ansible_connection=winrm is not supported"),
        ("[web]\nh1 berth_mirror='{{ m }}'\n", "is a Jinja template"),
        ("[web:oops]\nh1\n", "hosts:1: bad section header"),
        ("[web:vars]\nnovalue\n", "expected key=value"),
    ],
)
def test_bad_inventory_is_one_line(tmp_path, text, message):
    (tmp_path / "hosts").write_text(text)
    with pytest.raises(InputError, match=message) as e:
        inv = load(str(tmp_path / "hosts"))
        fleet_jobs(inv, list(inv.hosts), Job(Options(), SSHOptions()))
    assert "\n" not in str(e.value)


def test_bad_yaml_and_missing_inventory(tmp_path):
    (tmp_path / "i.yml").write_text("all:\n  hosts: [a, b]\n")
    with pytest.raises(InputError, match="hosts of group 'all' must be a mapping"):
        load(str(tmp_path / "i.yml"))
    (tmp_path / "j.yml").write_text("all:\n  hosts: {a: 1\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load(str(tmp_path / "j.yml"))
    with pytest.raises(InputError, match="no such file"):
        load(str(tmp_path / "nope"))


def test_inventory_directory(tmp_path):
    d = tmp_path / "inv"
    d.mkdir()
    (d / "10-web").write_text("[web]\nw1\n")
    (d / "20-db.yml").write_text("db:\n  hosts:\n    d1:\n")
    (d / "group_vars").mkdir()
    (d / "group_vars" / "all").write_text("berth_channel: test\n")
    inv = load(str(d))
    assert list(inv.hosts) == ["w1", "d1"] and inv.host_vars("d1")["berth_channel"] == "test"


@pytest.mark.parametrize(
    "text, sizes",
    [
        ("2", [2, 2, 2, 2, 2]),
        ("30%", [3, 3, 3, 1]),
        ("1,10%,50%", [1, 1, 5, 3]),
        ("1,5%", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),  # at least one host per batch
        ("100%", [10]),
    ],
)
def test_serial_batches(text, sizes):
    hosts = [f"h{i}" for i in range(10)]
    got = batches(hosts, parse_serial(text))
    assert [len(b) for b in got] == sizes and sum(got, []) == hosts


@pytest.mark.parametrize("text", ["0", "abc", "10%%", "101%", "1,,2", "-1"])
def test_bad_serial(text):
    with pytest.raises(InputError, match="--serial"):
        parse_serial(text)


def test_max_fail_percentage_stops_the_rollout():
    hosts = [f"h{i}" for i in range(8)]
    seen = []

    def per_host(h):
        seen.append(h)
        return HostReport(h, status="failed" if h in ("h2", "h3") else "ok")

    # batches of 2: h0 h1 ok, then h2 h3 both failed (100% > 40%): nothing after
    out = run_each(hosts, per_host, forks=2, serial=parse_serial("2"), stop=batch_failed(40, True))
    assert [r.target for r in out] == ["h0", "h1", "h2", "h3"] and seen == [r.target for r in out]
    seen.clear()
    # 50% of a batch of 4 failed: not above 50, so every host is reached
    out = run_each(hosts, per_host, forks=4, serial=parse_serial("4"), stop=batch_failed(50, True))
    assert len(out) == 8
    # no threshold in a rolling run: a batch where every host failed stops it (as Ansible)
    out = run_each(hosts, per_host, forks=2, serial=parse_serial("2"), stop=batch_failed(None, True))
    assert len(out) == 4
    # no --serial: one batch, all hosts
    assert len(run_each(hosts, per_host, stop=batch_failed(None, False))) == 8
