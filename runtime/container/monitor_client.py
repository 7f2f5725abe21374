"""The engine's side of a monitor's socket (runtime/container/proc/monitor.py): connect, wait for the
recorded exit, wait for the monitor itself to go."""

import os
import socket
import time

from runtime.container.state import Container, proc_start_time  # noqa: F401
from runtime.container.proc.wire import send_msg


def connect(c, req):
    # type: (Container, dict) -> socket.socket
    """A connection to c's monitor with req sent; ConnectionError when it is gone."""
    try:
        fd = os.open(c.path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:  # removed meanwhile
        raise ConnectionError(str(e)) from None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("/proc/self/fd/%d/attach.sock" % fd)  # the full path may exceed 108 bytes
        send_msg(s, req)
    except OSError as e:
        s.close()
        raise ConnectionError(str(e)) from None
    finally:
        os.close(fd)
    return s


def flush(c, timeout=1.0):
    # type: (Container, float) -> None
    """Have c's monitor put in the log what PID 1 has written so far (when PID 1 has exited,
    the monitor drains the pipes before it records the exit and closes its socket); returns
    at once when there is no monitor."""
    try:
        s = connect(c, {"op": "flush"})
    except ConnectionError:
        return
    with s:
        s.settimeout(timeout)
        try:
            s.recv(1)
        except OSError:
            pass


def wait_exit(c, timeout=None):
    # type: (Container, float) -> bool
    """Block until PID 1 has exited and the monitor recorded it; False on timeout."""
    deadline = None if timeout is None else time.time() + timeout
    try:
        s = connect(c, {"op": "wait"})
    except ConnectionError:
        s = None
    if s is not None:
        with s:
            s.settimeout(timeout)
            try:
                while s.recv(4096):
                    pass
            except socket.timeout:
                return False
            except OSError:
                pass
    while c.alive_pid():  # no monitor to ask (it died): watch the process itself
        if deadline is not None and time.time() > deadline:
            return False
        time.sleep(0.01)
    return True


def await_monitor_exit(c, timeout=5.0, started=None):
    # type: (Container, float, dict) -> None
    """Wait for the last run's monitor (as recorded in `started`, default c's state.json),
    which exits right after recording the exit and then lets go of the container's overlay
    and removes the cgroup a new start is about to create."""
    st = c.started() if started is None else started
    deadline = time.time() + timeout
    while st.get("MonitorPid") and proc_start_time(st["MonitorPid"]) == st.get("MonitorStart") \
            and time.time() < deadline:
        time.sleep(0.005)
