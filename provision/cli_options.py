"""Options shared by every `provision` command (targets, connection, sudo) and the code that
turns them into a :class:`provision.apply.Job`."""

from __future__ import annotations

import getpass
from typing import List, Optional

import typer
from rich.console import Console
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
Forks = Annotated[int, typer.Option("--forks", "-f", help="Hosts worked on in parallel.")]
Serial = Annotated[Optional[int], typer.Option("--serial", help="Rolling run: N hosts per batch.")]
DistroLike = Annotated[
    Optional[str], typer.Option("--distro-like", help="Treat an unknown distro as el or debian.")
]
DataRoot = Annotated[
    str, typer.Option("--data-root", help="Engine data root (checked for d_type and space).")
]
MinFree = Annotated[float, typer.Option("--min-free-gb", help="Fail when the data root has less free space.")]


def make_job(
    targets,
    local,
    identity,
    ask_pass,
    ask_become_pass,
    sudo_password_file,
    jump,
    known_hosts,
    accept_new_host_keys,
    ssh_config,
    login,
    timeout,
    opts,
    **kw,
):
    """Validate the targets and options, read passwords once; return (targets, Job)."""
    from provision.apply import LOCAL, Job
    from provision.errors import InputError
    from provision.ssh import SSHOptions

    if local and targets:
        raise InputError("give TARGETs or --local, not both")
    if not local and not targets:
        raise InputError("no target: give [user@]host[:port] ... or --local")
    opts.validate()
    become = None
    if sudo_password_file:
        try:
            with open(sudo_password_file) as f:
                become = f.readline().rstrip("\n")
        except OSError as e:
            raise InputError(f"cannot read --sudo-password-file {sudo_password_file}: {e.strerror}") from None
    elif ask_become_pass:
        become = getpass.getpass("sudo password: ")
    ssh = SSHOptions(
        identities=list(identity or []),
        jump=jump,
        known_hosts=known_hosts,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=timeout,
        ssh_config=ssh_config,
        become_password=become,
        password=getpass.getpass("SSH password: ") if ask_pass else None,
    )
    job = Job(opts, ssh, login_user=login, local=local, **kw)
    return ([LOCAL] if local else list(dict.fromkeys(targets))), job


def fail_input(err: object) -> None:
    """Print one red line for bad input and exit 2 (no host was contacted)."""
    Console(stderr=True).print(f"[bold red]provision: {err}[/]", highlight=False)
    raise typer.Exit(2)
