"""pyinfra deploy for bench/provision_fleet.py: the host preparation of `provision host
--no-install` and playbooks/host.yml (modules file and load, sysctls file and live values, apt
sources from the mirror and a cache refresh after a change, daemon.json, the docker group and
its users), rendering the same templates/ with the same variables.

Run by the bench as: pyinfra -y INVENTORY.py bench/pyinfra_host.py --data vars_file=VARS.json
"""

import io
import json
import os

from pyinfra import host
from pyinfra.facts.server import Sysctl
from pyinfra.operations import apt, files, server

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "templates")
v = json.load(open(host.data.vars_file))


def template(name):
    return os.path.join(TEMPLATES, name)


files.template(
    name="Kernel modules persisted in modules-load.d",
    src=template("modules-load.conf.j2"), dest="/etc/modules-load.d/berth.conf",
    user="root", group="root", mode="644", **v,
)  # fmt: skip
# the same answer provision and the playbook act on: only loadable modules are modprobed
module_state = open(template("module-state.sh.j2")).read()
module_state = module_state.replace("{{ modules | join(' ') }}", " ".join(v["modules"]))
server.shell(
    name="Kernel modules loaded now (those neither loaded nor built in)",
    commands=["{ %s\n} | while read -r m state; do case $state in loadable) modprobe \"$m\" || exit 1;; "
              "missing) echo \"kernel module $m missing\" >&2; exit 1;; esac; done" % module_state],
)  # fmt: skip
files.template(
    name="Sysctls persisted in sysctl.d",
    src=template("sysctl.conf.j2"), dest="/etc/sysctl.d/99-berth.conf",
    user="root", group="root", mode="644", **v,
)  # fmt: skip
# keys this kernel's namespace lacks (the ARP table's, on a host that is itself a container) are
# left out, as provision and the playbook (sysctl -e) leave them out
live = host.get_fact(Sysctl, keys=list(v["sysctls"]))
for key, value in v["sysctls"].items():
    if key in live:
        server.sysctl(name=f"Sysctl {key} applied live", key=key, value=int(value))
sources = files.template(
    name="Apt sources from the mirror",
    src=template("sources.list.j2"), dest="/etc/apt/sources.list",
    user="root", group="root", mode="644", **v,
)  # fmt: skip
apt.update(name="Package cache refreshed after a repo change", _if=sources.did_change)
files.directory(name="Daemon.json directory", path=os.path.dirname(v["daemon_json_path"]), mode="755")
files.put(
    name="Daemon.json",
    src=io.StringIO(json.dumps(v["daemon_json_wanted"], indent=2) + "\n"),
    dest=v["daemon_json_path"], user="root", group="root", mode="644",
)  # fmt: skip
server.group(name="Docker group", group=v["docker_group"], gid=v["docker_gid"])
for user in v["docker_users"]:
    server.user(name=f"User {user} in the docker group", user=user, groups=[v["docker_group"]], append=True)
