"""Options shared by every `provision` command (targets, connection, sudo) and the code that
turns them into a :class:`provision.apply.Job`."""

from __future__ import annotations

import functools
import getpass
import inspect
from dataclasses import dataclass, fields
from typing import Callable, List, Optional, get_type_hints

import typer
from rich.console import Console
from rich.markup import escape
from typing_extensions import Annotated

Targets = Annotated[
    Optional[List[str]],
    typer.Argument(
        help="[user@]host[:port] (or a ~/.ssh/config alias); several run in parallel.", show_default=False
    ),
]
Local = Annotated[bool, typer.Option("--local", help="Run on this machine instead of over SSH.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Identity = Annotated[
    Optional[List[str]], typer.Option("--identity", "-i", help="SSH private key file (repeatable).")
]
AskPass = Annotated[bool, typer.Option("--ask-pass", "-k", help="Prompt for the SSH password.")]
AskBecome = Annotated[bool, typer.Option("--ask-become-pass", "-K", help="Prompt for the sudo password.")]
SudoFile = Annotated[
    Optional[str], typer.Option("--sudo-password-file", help="Read the sudo password from FILE.")
]
Jump = Annotated[Optional[str], typer.Option("--jump", "-J", help="Jump host [user@]host[:port].")]
KnownHosts = Annotated[
    str, typer.Option("--known-hosts", help="known_hosts file to trust (and record into).")
]
AcceptNew = Annotated[
    bool,
    typer.Option("--accept-new-host-keys", help="Accept and record unknown host keys (refused by default)."),
]
SshConfig = Annotated[
    Optional[str], typer.Option("--ssh-config", help="ssh config file (default ~/.ssh/config).")
]
LoginUser = Annotated[
    Optional[str], typer.Option("--login", "-l", help="SSH login user when TARGET has none.")
]
Timeout = Annotated[float, typer.Option("--timeout", help="SSH connect timeout, seconds.")]
InventoryPath = Annotated[
    Optional[str],
    typer.Option(
        "--inventory",
        help="Ansible inventory (INI or YAML file, or a directory; group_vars/ and host_vars/ beside it).",
    ),
]
Limit = Annotated[
    Optional[str],
    typer.Option("--limit", help="Inventory hosts to work on: Ansible's pattern syntax (web:&prod:!web03)."),
]
# a thread per host mostly waits on its host: 50 at once take one wave for a 50-host fleet
# where 20 took three (each wave as long as its slowest host)
DEFAULT_FORKS = 50
Forks = Annotated[int, typer.Option("--forks", "-f", help="Hosts worked on in parallel.")]
Serial = Annotated[
    Optional[str],
    typer.Option("--serial", help="Rolling run: batch sizes N, P% or a list (1,10%,100%; the last repeats)."),
]
MaxFail = Annotated[
    Optional[float],
    typer.Option(
        "--max-fail-percentage",
        help="Stop the rollout after a batch where more than P% of hosts failed (the rest: skipped).",
    ),
]
LogDir = Annotated[
    Optional[str],
    typer.Option("--log-dir", help="Write one log per host into DIR: every command, its output, the diffs."),
]
ReportFile = Annotated[
    Optional[str],
    typer.Option("--report", help="Write the JSON report (per host, per step) to FILE, whatever the exit."),
]
DistroLike = Annotated[
    Optional[str], typer.Option("--distro-like", help="Treat an unknown distro as el or debian.")
]
DataRoot = Annotated[
    str, typer.Option("--data-root", help="Engine data root (checked for d_type and space).")
]
MinFree = Annotated[float, typer.Option("--min-free-gb", help="Fail when the data root has less free space.")]


@dataclass(frozen=True)
class Connection:
    """How to reach the targets and become root there: the SSH and sudo options of every command
    that works on hosts. A command takes them as one parameter, ``conn: Connection``, and
    :func:`with_connection` shows Typer the fields as options in that parameter's place."""

    identity: Identity = None
    ask_pass: AskPass = False
    ask_become_pass: AskBecome = False
    sudo_password_file: SudoFile = None
    jump: Jump = None
    known_hosts: KnownHosts = "~/.ssh/known_hosts"
    accept_new_host_keys: AcceptNew = False
    ssh_config: SshConfig = None
    login: LoginUser = None
    timeout: Timeout = 10.0
    inventory: InventoryPath = None
    limit: Limit = None


DEFAULT_CONNECTION = Connection()  # frozen, so one instance can be every command's default


def with_connection(command: Callable[..., None]) -> Callable[..., None]:
    """Decorate a command that takes ``conn: Connection``: Typer sees the fields of
    :class:`Connection` as options (in that parameter's place, so ``--help`` lists them there) and
    the command receives them gathered into one Connection."""
    hints = get_type_hints(command, include_extras=True)
    field_hints = get_type_hints(Connection, include_extras=True)
    names = [f.name for f in fields(Connection)]
    params = []
    for p in inspect.signature(command).parameters.values():
        if p.name == "conn":
            params += [
                inspect.Parameter(f.name, p.KEYWORD_ONLY, default=f.default, annotation=field_hints[f.name])
                for f in fields(Connection)
            ]
        else:
            params.append(p.replace(kind=p.KEYWORD_ONLY, annotation=hints[p.name]))

    @functools.wraps(command)
    def run(**kw):
        return command(conn=Connection(**{n: kw.pop(n) for n in names}), **kw)

    del run.__wrapped__  # Typer must read the signature below, not the command's own
    run.__signature__ = inspect.Signature(params, return_annotation=None)
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def make_job(targets, local, conn: Connection, opts, **kw):
    """Validate the targets (or the inventory and --limit) and options, read passwords once;
    return ``{target: Job}`` in target order (an inventory host's variables apply to its own
    Job). On bad input print one line and exit 2 (see :func:`fail_input`): no host has been
    contacted yet."""
    from provision.apply import LOCAL, Job
    from provision.errors import InputError, ProvisionError
    from provision.ssh import SSHOptions, load_ssh_config, parse_target

    try:
        if conn.inventory and (targets or local):
            raise InputError("give TARGETs, --local or --inventory, not several")
        if conn.limit and not conn.inventory:
            raise InputError("--limit selects inventory hosts: give --inventory too")
        if local and targets:
            raise InputError("give TARGETs or --local, not both")
        if not local and not targets and not conn.inventory:
            raise InputError("no target: give [user@]host[:port] ..., --inventory FILE or --local")
        opts.validate()
        for t in [] if local or conn.inventory else targets:
            parse_target(t)
        for j in conn.jump.split(",") if conn.jump else []:
            parse_target(j, "--jump")
        if conn.ssh_config:
            load_ssh_config(conn.ssh_config)
        if kw.get("log_dir"):
            from provision.hostlog import prepare

            prepare(kw["log_dir"])
        inv = hosts = None
        if conn.inventory:
            from provision import inventory, patterns

            inv = inventory.load(conn.inventory)
            hosts = patterns.select(inv, conn.limit)
        become = None
        if conn.sudo_password_file:
            try:
                with open(conn.sudo_password_file) as f:
                    become = f.readline().rstrip("\n")
            except OSError as e:
                raise InputError(
                    f"cannot read --sudo-password-file {conn.sudo_password_file}: {e.strerror}"
                ) from None
        elif conn.ask_become_pass:
            become = getpass.getpass("sudo password: ")
        ssh = SSHOptions(
            identities=list(conn.identity or []),
            jump=conn.jump,
            known_hosts=conn.known_hosts,
            accept_new_host_keys=conn.accept_new_host_keys,
            connect_timeout=conn.timeout,
            ssh_config=conn.ssh_config,
            become_password=become,
            password=getpass.getpass("SSH password: ") if conn.ask_pass else None,
        )
        job = Job(opts, ssh, login_user=conn.login, local=local, **kw)
        if inv is not None:
            from provision.hostvars import fleet_jobs

            return fleet_jobs(inv, hosts, job)
    except ProvisionError as e:
        fail_input(e)
    return {t: job for t in ([LOCAL] if local else dict.fromkeys(targets))}


def check_report_path(path: str | None) -> None:
    """``--report FILE`` must be writable before any host is worked on (exit 2 otherwise)."""
    if not path:
        return
    import os

    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w"):
            pass
        os.unlink(tmp)
    except OSError as e:
        fail_input(f"cannot write --report {path}: {e.strerror}")


def write_report(path: str | None, result) -> None:
    """``--report FILE``: the JSON report of every host (also when hosts failed or were
    skipped); a file that cannot be written is one line on stderr and exit status 1."""
    if not path:
        return
    import json
    import os

    from provision.fleet import FleetResult

    assert isinstance(result, FleetResult)
    data = {
        "hosts": [r.as_dict() for r in result.values()],
        "summary": {
            status: sum(1 for r in result.values() if r.status == status)
            for status in ("ok", "changed", "would change", "failed", "skipped")
        },
    }
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        Console(stderr=True).print(f"[bold red]provision: cannot write --report {escape(path)}: "
                                   f"{escape(e.strerror or str(e))}[/]", highlight=False)  # fmt: skip
        raise typer.Exit(1) from None


def fail_input(err: object) -> None:
    """Print one red line for bad input and exit 2 (no host was contacted)."""
    Console(stderr=True).print(f"[bold red]provision: {escape(str(err))}[/]", highlight=False)
    raise typer.Exit(2)
