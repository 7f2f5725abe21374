"""docker/go-units formatting shared by the CLI and the engine: sizes and durations as docker
prints them ("4.26MB", "About a minute"), and sizes as docker parses them ("10m")."""

_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


def human_size(size, precision=3):
    # type: (float, int) -> str
    """go-units HumanSizeWithPrecision(size, precision): 4.26MB, 512B (`docker images` uses 3
    significant digits, the pull/push progress bars 4)."""
    size = float(size or 0)
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return "%.*g%s" % (precision, size, _UNITS[i])


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


def parse_bytes(text):
    # type: (str) -> int
    """go-units RAMInBytes: 64m, 1g, 512k, 10mb, 1048576 (binary multiples); ValueError."""
    low = str(text).strip().lower()
    for suffix in ("ib", "b", "i"):
        if low.endswith(suffix) and len(low) > len(suffix):
            low = low[:-len(suffix)]
            break
    power = "kmgtp".find(low[-1:]) + 1 if low else 0
    value = float(low[:-1] if power else low)
    if value < 0:
        raise ValueError("negative size: %r" % text)
    return int(value * 1024 ** power)
