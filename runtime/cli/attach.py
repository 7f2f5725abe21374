"""The client side of a hijacked attach/exec connection: demultiplex the 8-byte frames (or pass
raw TTY bytes), forward stdin, put the terminal in raw mode and forward its size."""

import _socket
import posix  # not os, nor struct: see runtime/cli/client.py
import sys



def terminal_size(fd=1):
    # type: (int) -> Optional[tuple]
    """(rows, columns) of the terminal on fd, or None."""
    try:
        size = posix.get_terminal_size(fd)
        return size.lines, size.columns
    except OSError:
        return None


class RawTerminal(object):
    """Context manager: the terminal on stdin in raw mode while attached (restored on exit)."""

    def __init__(self, enabled):
        # type: (bool) -> None
        self.enabled = enabled and posix.isatty(0)
        self.saved = None  # type: Any

    def __enter__(self):
        # type: () -> RawTerminal
        if self.enabled:
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
        return self

    def __exit__(self, *exc):
        # type: (Any) -> None
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def watch_resize(resize):
    # type: (Callable[[int, int], None]) -> None
    """Send the terminal size now and on every SIGWINCH."""
    import signal

    def send(*_):
        # type: (Any) -> None
        size = terminal_size(1) or terminal_size(0)
        if size:
            try:
                resize(size[0], size[1])
            except Exception:  # noqa: BLE001 (a failed resize must not end the session)
                pass

    send()
    signal.signal(signal.SIGWINCH, send)


def _feed_stdin(sock):
    # type: (Any) -> None
    try:
        while True:
            data = posix.read(0, 65536)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass
    try:
        sock.shutdown(_socket.SHUT_WR)
    except OSError:
        pass


def stream(resp, tty, stdin=False):
    # type: (Any, bool, bool) -> None
    """Copy the hijacked connection's output to stdout/stderr until the daemon closes it;
    forward stdin in a daemon thread when asked."""
    if stdin:
        import threading
        threading.Thread(target=_feed_stdin, args=(resp.sock,), daemon=True).start()
    outs = {1: sys.stdout.buffer, 2: sys.stderr.buffer, 0: sys.stdout.buffer}
    try:
        if tty:
            while True:
                data = resp.read_some(65536)
                if not data:
                    break
                outs[1].write(data)
                outs[1].flush()
            return
        while True:
            head = resp.read_exact(8)
            if len(head) < 8:
                break
            kind, size = head[0], int.from_bytes(head[4:8], "big")
            data = resp.read_exact(size)
            out = outs.get(kind, outs[1])
            out.write(data)
            out.flush()
    except OSError:
        pass
    finally:
        resp.close()


def demux(data):
    # type: (bytes) -> tuple
    """(stdout bytes, stderr bytes) of a whole framed body."""
    out, err, i = [], [], 0
    while i + 8 <= len(data):
        kind, size = data[i], int.from_bytes(data[i + 4:i + 8], "big")
        (err if kind == 2 else out).append(data[i + 8:i + 8 + size])
        i += 8 + size
    return b"".join(out), b"".join(err)
