"""The Vagrantfile, checked as far as this machine can run it (no Vagrant, no VM here): ruby
accepts its syntax, its configure block and provisioning trigger run against stand-in Vagrant
objects, and the exact `provision` command line the trigger would run parses with provision's
own command line (a dry parse: options and values converted, nothing invoked)."""

import json
import os
import shutil
import subprocess

import pytest
import typer.main

from provision.cli import app
from tests.provision.labutil import ROOT

VAGRANTFILE = ROOT / "Vagrantfile"

# Stand-ins for Vagrant: record everything the configure block does, collect the trigger's ruby
# blocks, then call them with a machine whose ssh_info looks like a booted box's. `system` is
# replaced by a recorder, so nothing runs.
HARNESS = r"""
require "json"
$ruby_blocks = []
$settings = []
$argvs = []
class Rec
  def initialize(path) @path = path end
  def method_missing(name, *args, &blk)
    $settings << [(@path + [name.to_s]).join("."), args.map(&:to_s)]
    if blk && name == :ruby
      $ruby_blocks << blk
    elsif blk
      blk.call(Rec.new(@path + [name.to_s]))
    end
    Rec.new(@path + [name.to_s])
  end
  def respond_to_missing?(*) true end
end
module Vagrant
  def self.configure(version) yield Rec.new(["config"]) end
  module Errors; class VagrantError < StandardError; end; end
end
module Kernel
  def system(*argv) $argvs << argv; true end
end
load ARGV[0]
Machine = Struct.new(:name, :ssh_info, :provider_name)
def box(name, i)
  Machine.new(name, {username: "vagrant", host: "127.0.0.1", port: 2222 + i,
                     private_key_path: ["/home/u/.vagrant/machines/#{name}/libvirt/private_key"]}, :libvirt)
end
class Env
  def machine(name, provider)
    raise "provider #{provider}" unless provider == :libvirt
    box(name.to_s, NAMES.index(name.to_s))
  end
end
# each machine's blocks (up, provision, reload) are called with that machine
$ruby_blocks.each_with_index { |b, i| n = NAMES[i / 3]; b.call(Env.new, box(n, NAMES.index(n))) }
puts "@@json " + JSON.generate({"argvs" => $argvs, "settings" => $settings})
"""

needs_ruby = pytest.mark.skipif(
    not shutil.which("ruby"), reason="ruby is not installed (tests/run.sh installs it)"
)


def run_vagrantfile(tmp_path, **env):
    harness = tmp_path / "harness.rb"
    harness.write_text(HARNESS)
    argv = ["ruby", str(harness), str(VAGRANTFILE)]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                       env=dict(os.environ, **env))  # fmt: skip
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("@@json "))
    return json.loads(line[len("@@json ") :])


def dry_parse(argv):
    """Parse `provision ARGV` exactly as the CLI would, without running the command."""
    group = typer.main.get_command(app)
    name, *rest = argv
    cmd = group.get_command(group.make_context("provision", [name, "--help"], resilient_parsing=True), name)
    return cmd.make_context(name, rest).params


@needs_ruby
def test_vagrantfile_syntax():
    p = subprocess.run(
        ["ruby", "-c", str(VAGRANTFILE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert p.returncode == 0 and "Syntax OK" in p.stdout, p.stderr


@needs_ruby
def test_vagrantfile_provisions_a_centos7_box_with_a_command_provision_accepts(tmp_path):
    out = run_vagrantfile(tmp_path)
    settings = dict((k, v) for k, v in out["settings"])
    assert settings["config.vm.box="] == ["centos/7"]
    argvs = out["argvs"]
    assert len(argvs) == 3  # after up, provision and reload
    argv = argvs[0]
    assert argv[0].endswith("/.venv/bin/provision") and argv[1] == "host"
    params = dry_parse(argv[1:])
    assert params["targets"] == ["vagrant@127.0.0.1:2222"]
    assert params["identity"] == ["/home/u/.vagrant/machines/default/libvirt/private_key"]
    assert params["engine"] == "berth" and params["mirror"] == "official"
    assert params["user"] == ["vagrant"] and params["accept_new_host_keys"] is True
    assert params["known_hosts"].endswith("/.vagrant/known_hosts")


@needs_ruby
def test_vagrantfile_machines_and_box_from_the_environment_one_provision_call(tmp_path):
    out = run_vagrantfile(tmp_path, BERTH_MACHINES="3", BERTH_BOX="local/bookworm")
    settings = out["settings"]
    assert ["config.vm.box=", ["local/bookworm"]] in settings
    assert [s[1] for s in settings if s[0] == "config.vm.define"] == [["berth-1"], ["berth-2"], ["berth-3"]]
    argvs = out["argvs"]
    fleet = [dry_parse(a[1:]) for a in argvs if len(dry_parse(a[1:])["targets"]) > 1]
    # `up`: one call for all three, once the last is up; `provision`/`reload`: one each
    assert len(fleet) == 1 and len(argvs) == 1 + 2 * 3
    assert fleet[0]["targets"] == [f"vagrant@127.0.0.1:{2222 + i}" for i in range(3)]
    keys = [f"/home/u/.vagrant/machines/berth-{i}/libvirt/private_key" for i in (1, 2, 3)]
    assert fleet[0]["identity"] == keys
    p = subprocess.run(
        ["ruby", str(tmp_path / "harness.rb"), str(VAGRANTFILE)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, BERTH_MACHINES="0"),
    )  # fmt: skip
    assert p.returncode != 0 and "BERTH_MACHINES must be 1 or more, not 0" in p.stderr


def test_dry_parse_rejects_what_provision_would():
    with pytest.raises(Exception, match="No such option"):
        dry_parse(["host", "h1", "--no-such-option"])


@needs_ruby
def test_vagrantfile_more_provision_options_and_dotfile_path_from_the_environment(tmp_path):
    out = run_vagrantfile(
        tmp_path, BERTH_PROVISION_OPTS="--report 'my report.json' --log-dir logs",
        VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"),
    )  # fmt: skip
    params = dry_parse(out["argvs"][0][1:])
    assert params["report"] == "my report.json" and params["log_dir"] == "logs"
    assert params["known_hosts"] == str(tmp_path / "dot" / "known_hosts")
