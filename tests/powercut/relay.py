"""QEMU guestfwd helper: joins stdin/stdout (one guest connection) to 127.0.0.1:PORT.

Run by QEMU once per connection the guest opens to its guestfwd address; the argument is the
host loopback port (no commas: QEMU's option syntax would split them)."""

import os
import selectors
import socket
import sys


def main() -> None:
    sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    open_in = True
    while True:
        for key, _ in sel.select():
            if key.fileobj == 0:
                data = os.read(0, 65536)
                if not data:
                    sel.unregister(0)
                    sock.shutdown(socket.SHUT_WR)
                    open_in = False
                    continue
                sock.sendall(data)
            else:
                data = sock.recv(65536)
                if not data:
                    return
                view = memoryview(data)
                while view:
                    view = view[os.write(1, view):]
        if not open_in and not sel.get_map():
            return


if __name__ == "__main__":
    main()
