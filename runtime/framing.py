"""Docker's multiplexed stdio stream (attach and logs without a TTY): each frame is a header of
8 bytes (stream 1 or 2, three zero bytes, big-endian uint32 payload size) and the payload."""

import struct

STDIN, STDOUT, STDERR = 0, 1, 2
HEADER = struct.Struct(">BxxxI")


def frame(stream, data):
    # type: (int, bytes) -> bytes
    """One frame of data on stream (STDOUT or STDERR)."""
    return HEADER.pack(stream, len(data)) + data
