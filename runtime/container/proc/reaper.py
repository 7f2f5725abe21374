"""`--init` (HostConfig.Init): the container's PID 1 stays a small reaping init, as Docker's
docker-init (tini) does: it forks the command, forwards every signal it can catch to it, reaps
the orphans the namespace hands it, and exits with the command's status (128+N when the
command died of signal N)."""

import os
import signal

NAME = "berth-init"
_NOT_FORWARDED = (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)


def run(child):
    # type: (int) -> None
    """PID 1's loop once `child` (the command) is forked (PID 1 named NAME before the fork);
    never returns."""

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except OSError:
            pass

    for sig in range(1, signal.NSIG):
        if sig in _NOT_FORWARDED:
            continue
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError, RuntimeError):
            pass  # SIGRTMIN..: some are the C library's own
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def foreground(tty):
    # type: (bool) -> None
    """In the command's process (before its exec): with a TTY, its own process group in the
    terminal's foreground, so the terminal's ^C reaches it."""
    if not tty:
        return
    os.setpgid(0, 0)
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass
    signal.signal(signal.SIGTTOU, old)
