"""`berth`: a docker-like CLI over the engine's HTTP API on a unix socket.

Only the chosen command's module and parser are built (runtime.cli.opts; argparse only for
help and errors), so a command starts without importing the rest. Exit codes as docker: the
container's for run/start -a/exec; 125 for berth's own errors (bad flags, daemon errors in
run); 126 cannot invoke; 127 command not found; 1 for a failed command otherwise.
"""

import posix  # os._exit without os (see runtime/cli/client.py)
import sys

from runtime import __version__
from runtime.cli.opts import Parser

# command -> (module under runtime.cli, function suffix, one-line help)
COMMANDS = {
    "run": ("run", "run", "Create and run a new container from an image"),
    "create": ("run", "create", "Create a new container"),
    "ps": ("containers", "ps", "List containers"),
    "logs": ("containers", "logs", "Fetch the logs of a container"),
    "start": ("containers", "start", "Start one or more stopped containers"),
    "stop": ("containers", "stop", "Stop one or more running containers"),
    "restart": ("containers", "restart", "Restart one or more containers"),
    "stats": ("stats", "stats", "Display a live stream of container(s) resource usage statistics"),
    "top": ("stats", "top", "Display the running processes of a container"),
    "update": ("update", "update", "Update configuration of one or more containers"),
    "kill": ("containers", "kill", "Kill one or more running containers"),
    "rm": ("containers", "rm", "Remove one or more containers"),
    "pause": ("containers", "pause", "Pause all processes within one or more containers"),
    "unpause": ("containers", "unpause", "Unpause all processes within one or more containers"),
    "wait": ("containers", "wait", "Block until containers stop, then print their exit codes"),
    "exec": ("containers", "exec", "Execute a command in a running container"),
    "inspect": ("system", "inspect", "Return low-level information on containers, images, volumes"),
    "images": ("images", "images", "List images"),
    "pull": ("images", "pull", "Download an image from a registry"),
    "push": ("images", "push", "Upload an image to a registry"),
    "tag": ("images", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "rmi": ("images", "rmi", "Remove one or more images"),
    "history": ("images", "history", "Show the history of an image"),
    "load": ("images", "load", "Load an image from a tar archive or STDIN"),
    "save": ("images", "save", "Save one or more images to a tar archive"),
    "import": ("images", "import", "Import a rootfs tarball as an image"),
    "commit": ("images", "commit", "Create a new image from a container's changes"),
    "build": ("build", "build", "Build an image from a Dockerfile"),
    "volume create": ("volumes", "create", "Create a volume"),
    "volume ls": ("volumes", "ls", "List volumes"),
    "volume inspect": ("volumes", "inspect", "Display detailed information on volumes"),
    "volume rm": ("volumes", "rm", "Remove one or more volumes"),
    "volume prune": ("disk", "volume_prune", "Remove unused volumes"),
    "attach": ("containers", "attach", "Attach to a running container's stdio"),
    "rename": ("containers", "rename", "Rename a container"),
    "cp": ("files", "cp", "Copy files between a container and the local filesystem"),
    "diff": ("files", "diff", "Changes to files in a container's filesystem"),
    "export": ("files", "export", "Export a container's filesystem as a tar archive"),
    "container prune": ("disk", "container_prune", "Remove all stopped containers"),
    "image prune": ("disk", "image_prune", "Remove unused images"),
    "image inspect": ("images", "inspect", "Display detailed information on images"),
    "container inspect": ("containers", "inspect", "Display detailed information on containers"),
    "system df": ("disk", "df", "Show disk usage"),
    "system prune": ("disk", "system_prune", "Remove unused data"),
    "network create": ("networks", "create", "Create a network"),
    "network ls": ("networks", "ls", "List networks"),
    "network inspect": ("networks", "inspect", "Display detailed information on one or more networks"),
    "network rm": ("networks", "rm", "Remove one or more networks"),
    "network connect": ("networks", "connect", "Connect a container to a network"),
    "network disconnect": ("networks", "disconnect", "Disconnect a container from a network"),
    "network prune": ("networks", "prune", "Remove all unused networks"),
    "port": ("containers", "port", "List port mappings or a specific mapping for the container"),
    "info": ("system", "info", "Display system-wide information"),
    "system check": ("system", "check", "Check the engine's data root for inconsistencies (read-only)"),
    "events": ("system", "events", "Get real time events from the server"),
    "version": ("system", "version", "Show the berth version information"),
    "login": ("system", "login", "Log in to a registry"),
    "logout": ("system", "logout", "Log out from a registry"),
}
ALIASES = {"volume list": "volume ls", "volume remove": "volume rm", "network list": "network ls",
           "network remove": "network rm", "container port": "port", "container ls": "ps",
           "container list": "ps", "image ls": "images", "image list": "images", "image rm": "rmi",
           "image pull": "pull", "image push": "push", "image load": "load", "image save": "save",
           "image tag": "tag", "image history": "history", "image import": "import",
           "image build": "build", "system info": "info"}
USAGE = """Usage:  berth [OPTIONS] COMMAND

A docker-like client for berthd.

Options:
  -H, --host string   Daemon socket to connect to (default $BERTH_HOST or unix:///run/berth.sock)
  -v, --version       Print version information and quit
  -h, --help          Print usage

Commands:
"""


def usage():
    # type: () -> str
    """The top-level help text."""
    width = max(len(c) for c in COMMANDS)
    return USAGE + "".join("  %s  %s\n" % (c.ljust(width), h) for c, (_, _, h) in COMMANDS.items())


def cli():
    # type: () -> None
    """The `berth` program: main(), then flush and leave with _exit. The interpreter's own
    teardown (module cleanup, a last GC) is ~3-4 ms of every short command and there is
    nothing for it to do: no atexit handlers, files or child processes are left open here."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    except OSError:
        code = code or 120  # what the interpreter reports when it cannot flush at exit
    posix._exit(code if isinstance(code, int) else 1)


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    """Run one berth command (argv defaults to sys.argv[1:]); returns its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    host = None
    while argv and argv[0].startswith("-"):
        opt = argv.pop(0)
        if opt in ("-H", "--host") and argv:
            host = argv.pop(0)
        elif opt.startswith("--host="):
            host = opt.split("=", 1)[1]
        elif opt in ("-v", "--version"):
            print("berth version %s" % __version__)
            return 0
        elif opt in ("-h", "--help"):
            sys.stdout.write(usage())
            return 0
        elif opt in ("-D", "--debug"):
            pass
        else:
            sys.stderr.write("berth: unknown flag: %s\nSee 'berth --help'.\n" % opt)
            return 125
    if not argv:
        sys.stdout.write(usage())
        return 0
    name = argv.pop(0)
    if name in ("volume", "network", "container", "image", "system") and argv:
        name = name + " " + argv.pop(0)
    name = ALIASES.get(name, name)
    if name.startswith("container ") and name not in COMMANDS:
        name = name.split(" ", 1)[1]
    if name not in COMMANDS:
        sys.stderr.write("berth: '%s' is not a berth command.\nSee 'berth --help'\n" % name)
        return 125
    module_name, func, help_text = COMMANDS[name]
    module = __import__("runtime.cli." + module_name, fromlist=[module_name])
    parser = Parser(prog="berth " + name, description=help_text, add_help=name not in ("run", "create"))
    if name in ("run", "create"):
        parser.add_argument("--help", action="help", help="show this help message and exit")
    getattr(module, "parser_" + func)(parser)
    args = parser.parse_args(argv)

    from runtime.cli.client import APIError, Client, ConnectError
    from runtime.errors import BerthError
    try:
        client = Client(host)
        return getattr(module, "cmd_" + func)(client, args) or 0
    except ConnectError as exc:
        sys.stderr.write("berth: %s\n" % exc)
        return 125 if name in ("run", "create", "exec") else 1
    except APIError as exc:
        sys.stderr.write("Error response from daemon: %s\n" % exc)
        return 125 if name in ("run", "create", "exec") else 1
    except BerthError as exc:  # local input berth cannot use, e.g. a corrupt credentials file
        sys.stderr.write("berth: %s\n" % exc)
        return 125 if name in ("run", "create", "exec") else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    cli()
