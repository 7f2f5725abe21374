"""What an inventory host's variables mean to provision: how to reach it (Ansible's connection
variables) and what to do there (berth's own ``berth_*`` variables, the names the Ansible
role uses too). The command line gives every host's defaults; a host's variables override
them for that host. Checked for every selected host before any host is contacted."""

from __future__ import annotations

import dataclasses
import json

from provision.apply import Job
from provision.errors import InputError
from provision.inventory import Inventory
from provision.ssh import parse_target

TRUE = ("1", "true", "yes", "on", "y")
FALSE = ("0", "false", "no", "off", "n")
# berth variable -> (Options field, type)
BERTH_VARS = {
    "berth_engine": ("engine", str),
    "berth_channel": ("channel", str),
    "berth_mirror": ("mirror", str),
    "berth_registry_mirrors": ("registry_mirrors", list),
    "berth_daemon_json": ("daemon_opts", dict),
    "berth_group": ("group", str),
    "berth_gid": ("gid", int),
    "berth_users": ("users", list),
    "berth_packages": ("packages", list),
    "berth_gpgcheck": ("gpgcheck", bool),
    "berth_data_root": ("data_root", str),
    "berth_docker_version": ("docker_version", str),
    "berth_install_engine": ("install_engine", bool),
    "berth_bundle": ("bundle", str),
    "berth_distro_like": ("distro_like", str),
    "berth_min_free_gb": ("min_free_gb", float),
}
# variables of the Ansible role that only the playbook reads (where it finds the bundle, ...)
ROLE_ONLY = {"berth_bundle_dir", "berth_checkout", "berth_probe"}
ALIASES = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "become": ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"),
    "password": ("ansible_password", "ansible_ssh_pass"),
}
CONNECTIONS = ("ssh", "smart", "paramiko", "local")


def _pick(hv: dict, what: str):
    for name in ALIASES[what]:
        if hv.get(name) is not None:
            return name, hv[name]
    return None, None


def _convert(host: str, name: str, value, kind: type):
    """``value`` as ``kind``; INI ``:vars`` give strings, so they are read the way Ansible would."""
    bad = InputError(f"inventory host {host}: {name} must be {kind.__name__}, not {value!r}")
    if isinstance(value, str) and "{{" in value:
        raise InputError(f"inventory host {host}: {name} is a Jinja template ({value!r}); provision "
                         "reads inventory values as they are: give the value itself")  # fmt: skip
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in TRUE:
            return True
        if str(value).lower() in FALSE:
            return False
        raise bad
    if kind is list:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
            return [str(v) for v in value]
        raise bad
    if kind is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, dict):
            raise bad
        return value
    if kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise bad from None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise bad
    return str(value)


def options_for(host: str, hv: dict, job: Job):
    """The job's Options with the host's ``berth_*`` variables applied (validated)."""
    unknown = sorted(k for k in hv if k.startswith("berth_") and k not in BERTH_VARS and k not in ROLE_ONLY)
    if unknown:
        raise InputError(f"inventory host {host}: unknown variable {unknown[0]} "
                         f"(berth's are {', '.join(sorted(BERTH_VARS))})")  # fmt: skip
    changes: dict = {}
    for name, (fld, kind) in BERTH_VARS.items():
        if name not in hv:
            continue
        value = hv[name]
        if value is None:
            changes[fld] = None
            continue
        value = _convert(host, name, value, kind)
        if fld == "daemon_opts":  # deep-merged over the command line's --daemon-opt
            value = list(job.opts.daemon_opts) + [f"{k}={json.dumps(v)}" for k, v in value.items()]
        changes[fld] = value
    opts = dataclasses.replace(job.opts, **changes)
    try:
        opts.validate()
    except InputError as e:
        raise InputError(f"inventory host {host}: {e}") from None
    return opts


def job_for(host: str, hv: dict, job: Job) -> Job:
    """The job for one inventory host: where to connect, as whom, with which key and sudo
    password, and what to do there."""
    conn = str(hv.get("ansible_connection") or "ssh")
    if conn not in CONNECTIONS:
        raise InputError(f"inventory host {host}: ansible_connection={conn} is not supported "
                         f"(provision connects with {', '.join(CONNECTIONS)})")  # fmt: skip
    ssh = job.ssh
    _, key = _pick(hv, "key")
    if key is not None:
        ssh = dataclasses.replace(ssh, identities=[_convert(host, "ansible_ssh_private_key_file", key, str)]
                                  + list(ssh.identities))  # fmt: skip
    name, become = _pick(hv, "become")
    if become is not None:
        ssh = dataclasses.replace(ssh, become_password=_convert(host, name, become, str))
    name, password = _pick(hv, "password")
    if password is not None:
        ssh = dataclasses.replace(ssh, password=_convert(host, name, password, str))
    hname, addr = _pick(hv, "host")
    addr = _convert(host, hname, addr, str) if addr is not None else host
    pname, port = _pick(hv, "port")
    port = _convert(host, pname, port, int) if port is not None else None
    uname, user = _pick(hv, "user")
    user = _convert(host, uname, user, str) if user is not None else None
    hostpart = f"[{addr}]" if ":" in addr and port is not None else addr
    address = (f"{user}@" if user else "") + hostpart + (f":{port}" if port is not None else "")
    try:
        parse_target(address, f"address of inventory host {host}")
    except InputError as e:
        raise InputError(f"{e} (from ansible_host/ansible_port/ansible_user)") from None
    return dataclasses.replace(
        job, opts=options_for(host, hv, job), ssh=ssh, address=address, local=conn == "local"
    )


def fleet_jobs(inv: Inventory, hosts: list[str], job: Job) -> dict[str, Job]:
    """``{inventory host: its Job}`` for the selected hosts, in their order."""
    return {h: job_for(h, inv.host_vars(h), job) for h in hosts}
