"""Output as docker prints it: tables padded like Go's tabwriter, go-units durations and sizes,
and the JSON progress stream of pull/push/load."""

import sys
import time

from runtime.cli.client import StreamError  # noqa: F401 (part of fmt's interface)
from runtime.units import human_duration, human_size  # noqa: F401 (part of fmt's interface)


def since(timestamp):
    # type: (float) -> str
    """"3 minutes ago" for a unix time."""
    return human_duration(max(0.0, time.time() - float(timestamp or 0))) + " ago"


def ellipsis(text, width):
    # type: (str, int) -> str
    """Cut to width characters, the last one an ellipsis."""
    return text if len(text) <= width else text[:width - 1] + "\u2026"


def short_id(ident):
    # type: (str) -> str
    """12 hex digits, without "sha256:"."""
    return (ident or "").split(":", 1)[-1][:12]


def table(headers, rows, out=None):
    # type: (List[str], List[List[str]], Optional[TextIO]) -> None
    """Docker's tabwriter (minwidth 10, padding 3): a cell is padded to max(len + 3, 10)."""
    out = out or sys.stdout
    n = len(headers)
    # a short row ends early: its missing cells are empty (and the line's spaces are stripped)
    rows = [row if len(row) == n else list(row) + [""] * (n - len(row)) for row in rows]
    # column by column, and one %-format per line: `ps -a` prints 1,000s of rows
    widths = [max([len(h), 7] + [len(cell) for cell in column])
              for h, column in zip(headers, zip(*rows) if rows else [()] * n)]
    line = "".join("%%-%ds" % (w + 3) for w in widths[:-1]) + "%s"
    out.write("".join((line % tuple(row)).rstrip() + "\n" for row in [headers] + rows))


class Progress(object):
    """Render Docker JSON messages: in place per layer id on a terminal, line by line otherwise."""

    def __init__(self, out=None):
        # type: (Optional[TextIO]) -> None
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.ids = []  # type: List[str]

    def show(self, msg):
        # type: (Dict[str, Any]) -> None
        """One message; raises StreamError for an error message."""
        if msg.get("errorDetail") or msg.get("error"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error"))
        if "stream" in msg:
            self.out.write(msg["stream"])
            self.out.flush()
            return
        ident, status = msg.get("id"), msg.get("status") or ""
        detail = msg.get("progressDetail") or {}
        text = "%s: %s" % (ident, status) if ident else status
        if self.tty and detail.get("total"):
            done, total = detail.get("current", 0), detail["total"]
            bar = "=" * int(40 * done / total)
            text += " [%-40s] %s/%s" % ((bar[:-1] + ">") if bar else "", human_size(done), human_size(total))
        if not ident or not self.tty:
            if not (detail.get("current") and not self.tty):
                self.out.write(text + "\n")
        elif ident not in self.ids:
            self.ids.append(ident)
            self.out.write(text + "\n")
        else:
            up = len(self.ids) - self.ids.index(ident)
            self.out.write("\x1b[%dA\r\x1b[2K%s\r\x1b[%dB" % (up, text, up))
        self.out.flush()


def inspect_each(client, path, names):
    # type: (object, str, list) -> int
    """`... inspect NAME...`: a JSON array of `GET path % name` for each name, an error line for
    each one the daemon refuses; returns the exit status (1 if any was refused)."""
    from runtime.cli.client import APIError
    import json
    out, status = [], 0
    for name in names:
        try:
            out.append(client.get(path % name))
        except APIError as exc:
            sys.stderr.write("Error response from daemon: %s\n" % exc)
            status = 1
    print(json.dumps(out, indent=4))
    return status
