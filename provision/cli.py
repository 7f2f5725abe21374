"""The `provision` command line (Typer). It only parses options and calls into the library."""

import typer

app = typer.Typer(help="Turn a server into a container host, locally or over SSH.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """Turn a server into a container host, locally or over SSH."""


@app.command()
def version() -> None:
    """Print provision's version."""
    from provision import __version__

    typer.echo(f"provision {__version__}")


def main() -> None:
    """Console-script entry point."""
    app()
