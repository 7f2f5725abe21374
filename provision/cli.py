"""The `provision` command line (Typer). It only parses options and calls into the library."""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer
from typing_extensions import Annotated

from provision.cli_options import (
    Targets,
    Local,
    JsonOut,
    Forks,
    Serial,
    MaxFail,
    LogDir,
    ReportFile,
    DistroLike,
    DataRoot,
    MinFree,
    Connection,
    DEFAULT_CONNECTION,
    DEFAULT_FORKS,
    with_connection,
    make_job,
    fail_input,
    check_report_path,
    write_report,
)

app = typer.Typer(
    help="Turn a server into a container host, locally or over SSH.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Turn a server into a container host, locally or over SSH."""


@app.command()
@with_connection
def check(
    targets: Targets = None,
    local: Local = False,
    json_out: JsonOut = False,
    distro_like: DistroLike = None,
    data_root: DataRoot = "/var/lib/berth",
    min_free_gb: MinFree = 1.0,
    conn: Connection = DEFAULT_CONNECTION,
    forks: Forks = DEFAULT_FORKS,
    log_dir: LogDir = None,
    report: ReportFile = None,
) -> None:
    """Gather facts and run the preflight checks; exit 1 if any check fails."""
    from provision.fleet import run_fleet
    from provision.options import Options
    from provision.report import make_console, print_checks, print_json

    opts = Options(distro_like=distro_like, data_root=data_root, min_free_gb=min_free_gb)
    check_report_path(report)
    jobs = make_job(targets, local, conn, opts, checks_only=True, log_dir=log_dir)
    result = run_fleet(jobs, forks=forks, live=not json_out)
    write_report(report, result)
    if json_out:
        print_json(result)
    else:
        out = make_console()
        for rep in result.values():
            print_checks(out, rep)
    raise typer.Exit(1 if result.failed else 0)


@app.command()
@with_connection
def host(
    targets: Targets = None,
    local: Local = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--check", help="Touch nothing: show the diff of every file and every command that would run."
        ),
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show diffs while applying.")] = False,
    json_out: JsonOut = False,
    engine: Annotated[
        str, typer.Option("--engine", help="berth or docker (Docker CE repo, /etc/docker).")
    ] = "berth",
    channel: Annotated[
        str, typer.Option("--channel", help="Docker CE channel: stable, test, edge, nightly.")
    ] = "stable",
    mirror: Annotated[
        Optional[str],
        typer.Option("--mirror", help="Package mirror: official, aliyun, tencent, ustc, or a base URL."),
    ] = None,
    registry_mirror: Annotated[
        Optional[List[str]],
        typer.Option("--registry-mirror", help="registry-mirrors entry in daemon.json (repeatable)."),
    ] = None,
    daemon_opt: Annotated[
        Optional[List[str]],
        typer.Option("--daemon-opt", help="Other daemon.json key: KEY=JSON or a.b=VALUE (repeatable)."),
    ] = None,
    gid: Annotated[Optional[int], typer.Option("--gid", help="Fixed gid for the docker group.")] = None,
    user: Annotated[
        Optional[List[str]], typer.Option("--user", help="Add this account to the docker group (repeatable).")
    ] = None,
    package: Annotated[
        Optional[List[str]], typer.Option("--package", help="Install this package if missing (repeatable).")
    ] = None,
    no_gpgcheck: Annotated[
        bool,
        typer.Option(
            "--no-gpgcheck", help="Repo files without signature checks (local repos of unsigned packages)."
        ),
    ] = False,
    no_install: Annotated[
        bool,
        typer.Option("--no-install", help="Prepare the host only: do not install or start the engine."),
    ] = False,
    userns_remap: Annotated[
        Optional[str],
        typer.Option(
            "--userns-remap",
            help="Remap containers' ids: default (a berth user with 65536 subordinate ids) or USER[:GROUP]; "
            "sets daemon.json userns-remap, /etc/subuid, /etc/subgid and user.max_user_namespaces.",
        ),
    ] = None,
    docker_version: Annotated[
        Optional[str],
        typer.Option(
            "--docker-version",
            help="--engine docker: pin this version (yum list docker-ce --showduplicates).",
        ),
    ] = None,
    bundle: Annotated[
        Optional[str],
        typer.Option(
            "--bundle", help="Ship this prebuilt engine bundle (`provision bundle`) instead of building one."
        ),
    ] = None,
    distro_like: DistroLike = None,
    data_root: DataRoot = "/var/lib/berth",
    min_free_gb: MinFree = 1.0,
    conn: Connection = DEFAULT_CONNECTION,
    forks: Forks = DEFAULT_FORKS,
    serial: Serial = None,
    max_fail_percentage: MaxFail = None,
    log_dir: LogDir = None,
    report: ReportFile = None,
) -> None:
    """Check, configure the host(s) (modules, sysctls, repos, packages, daemon.json, group), then
    install, enable and verify the engine (berth, or Docker with --engine docker)."""
    from provision.fleet import run_fleet
    from provision.options import Options
    from provision.report import make_console, print_json, print_steps, print_summary

    opts = Options(
        engine=engine,
        channel=channel,
        mirror=mirror,
        registry_mirrors=list(registry_mirror or []),
        daemon_opts=list(daemon_opt or []),
        gid=gid,
        users=list(user or []),
        packages=list(package or []),
        data_root=data_root,
        gpgcheck=not no_gpgcheck,
        distro_like=distro_like,
        min_free_gb=min_free_gb,
        install_engine=not no_install,
        docker_version=docker_version,
        bundle=bundle,
        userns_remap=userns_remap,
    )
    from provision.errors import InputError
    from provision.fleet import parse_serial

    try:
        batches = parse_serial(serial)
        if max_fail_percentage is not None and not 0 <= max_fail_percentage <= 100:
            raise InputError(f"--max-fail-percentage must be from 0 to 100, not {max_fail_percentage:g}")
    except InputError as e:
        fail_input(e)
    check_report_path(report)
    jobs = make_job(targets, local, conn, opts, dry_run=dry_run, show_diff=diff, log_dir=log_dir)
    result = run_fleet(
        jobs, forks=forks, serial=batches, max_fail_percentage=max_fail_percentage, live=not json_out
    )
    write_report(report, result)
    if json_out:
        print_json(result)
    else:
        out = make_console()
        for rep in result.values():
            print_steps(out, rep, show_diffs=dry_run or diff)
        print_summary(out, result)
    raise typer.Exit(1 if result.failed or result.skipped else 0)


@app.command()
@with_connection
def facts(
    targets: Targets = None,
    local: Local = False,
    data_root: DataRoot = "/var/lib/berth",
    conn: Connection = DEFAULT_CONNECTION,
    forks: Forks = DEFAULT_FORKS,
) -> None:
    """Print the raw facts of each target as JSON (what checks and steps decide from)."""
    from provision.apply import on_host
    from provision.facts import gather
    from provision.fleet import run_each
    from provision.options import Options

    def readable(t, job) -> dict:
        f = gather(t, job.opts)
        for v in f.get("files", {}).values():
            if v:
                v["content"] = v["content"].decode("utf-8", "replace")
        return f

    jobs = make_job(targets, local, conn, Options(data_root=data_root))
    hosts = list(jobs)
    results = run_each(hosts, lambda h: on_host(h, jobs[h], lambda t: readable(t, jobs[h])), forks)
    out = {h: f if err is None else {"error": err} for h, (f, err) in zip(hosts, results)}
    json.dump(out, sys.stdout, indent=2, default=lambda o: sorted(o) if isinstance(o, set) else str(o))
    print()
    raise typer.Exit(1 if any(err for _, err in results) else 0)


def _on_hosts(targets, local, conn, engine: str, forks: int, per_host) -> list:
    """per_host(host, job) on every target, `forks` at a time; the reports in target order."""
    from provision.fleet import run_each
    from provision.options import Options

    jobs = make_job(targets, local, conn, Options(engine=engine))
    return run_each(list(jobs), lambda h: per_host(h, jobs[h]), forks)


def _echo_json(reports: list) -> None:
    json.dump(reports, sys.stdout, indent=2)
    print()


@app.command()
@with_connection
def uninstall(
    targets: Targets = None,
    local: Local = False,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the data root: images, containers, volumes.")
    ] = False,
    engine: Annotated[
        str, typer.Option("--engine", help="Engine to remove when the host has no provision record.")
    ] = "berth",
    json_out: JsonOut = False,
    conn: Connection = DEFAULT_CONNECTION,
    forks: Forks = DEFAULT_FORKS,
) -> None:
    """Stop and disable the engine, remove what provision installed, restore backed-up files."""
    from provision.uninstall import uninstall_host

    reps = _on_hosts(targets, local, conn, engine, forks, lambda h, job: uninstall_host(h, job, purge))
    if json_out:
        _echo_json(reps)
    else:
        for r in reps:
            typer.echo(f"{r['target']}: {r['status']}" + (f": {r['error']}" if r["error"] else ""))
            for n in r["notes"]:
                typer.echo(f"  note: {n}")
    raise typer.Exit(1 if any(r["error"] for r in reps) else 0)


@app.command()
@with_connection
def status(
    targets: Targets = None,
    local: Local = False,
    engine: Annotated[
        str, typer.Option("--engine", help="Engine to ask when the host has no record.")
    ] = "berth",
    json_out: JsonOut = False,
    conn: Connection = DEFAULT_CONNECTION,
    forks: Forks = DEFAULT_FORKS,
) -> None:
    """Engine version, active, socket, mirrors and running containers of each host."""
    from rich.table import Table

    from provision.status import status_host
    from provision.report import make_console

    reps = _on_hosts(targets, local, conn, engine, forks, status_host)
    if json_out:
        _echo_json(reps)
    else:
        table = Table("host", "engine", "version", "active", "enabled", "socket", "mirrors", "running")
        for r in reps:
            if r.get("error"):
                table.add_row(r["target"], "[bold red]" + r["error"] + "[/]")
                continue
            table.add_row(
                r["target"], r["engine"], str(r["version"]), r["active"], r["enabled"],
                f"{r['socket_path']} {r['socket']}", " ".join(r["mirrors"]) or "-", str(r["running"]),
            )  # fmt: skip
        make_console().print(table)
    bad = any(r.get("error") or not str(r.get("active", "")).startswith("active") for r in reps)
    raise typer.Exit(1 if bad else 0)


@app.command()
def bundle(
    out: Annotated[str, typer.Option("--out", "-o", help="Directory to write berth-VERSION.pyz into.")] = ".",
    version_: Annotated[
        Optional[str], typer.Option("--version", help="Version to stamp (default: the runtime's).")
    ] = None,
) -> None:
    """Build the engine bundle (a zipapp for the target's python3 >= 3.6) and print its path."""
    import os

    from provision import bundle as bundlemod
    from provision.errors import ProvisionError

    try:
        b = bundlemod.build(version=version_)
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, b.filename)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b.data)
        os.replace(tmp, path)
    except ProvisionError as e:
        fail_input(e)
    except OSError as e:
        fail_input(f"cannot write the bundle into {out}: {e.strerror}")
    typer.echo(f"{path}  (engine {b.version}, build {b.build_id}, {len(b.data)} bytes)")


@app.command()
def version() -> None:
    """Print provision's version."""
    from provision import __version__

    typer.echo(f"provision {__version__}")


def main() -> None:
    """Console-script entry point."""
    app()
