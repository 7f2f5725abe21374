"""Output as docker prints it: tables padded like Go's tabwriter, go-units durations and sizes,
and the JSON progress stream of pull/push/load."""

import sys
import time


_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


def human_size(size):
    # type: (float) -> str
    """go-units HumanSizeWithPrecision(size, 3): 4.26MB, 512B."""
    size = float(size or 0)
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return "%.3g%s" % (size, _UNITS[i])


def human_duration(seconds):
    # type: (float) -> str
    """go-units HumanDuration: "Less than a second", "3 minutes", "About an hour"..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return "%d seconds" % s
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = int(seconds / 3600.0 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return "%d hours" % hours
    if hours < 24 * 7 * 2:
        return "%d days" % (hours // 24)
    if hours < 24 * 30 * 2:
        return "%d weeks" % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return "%d months" % (hours // 24 // 30)
    return "%d years" % (int(seconds / 3600.0) // 24 // 365)


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
    widths = [max(len(h), 7) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers] + rows:
        cells = [cell.ljust(widths[i] + 3) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip() + "\n")
    out.write("".join(lines))


class StreamError(Exception):
    """An errorDetail message in a JSON progress stream."""


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
