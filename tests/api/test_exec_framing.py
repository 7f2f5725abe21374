"""Exec streams: an exec's output is framed or raw as its start asks (`Tty` of
/exec/{id}/start), whether or not the exec has a pty, as dockerd does (docker-py starts a TTY
exec with Tty false and demultiplexes frames); a command that cannot start is an error in the
stream and exit code 127, as dockerd answers."""

import pytest

pytestmark = pytest.mark.timeout(120)


def test_tty_exec_frames_unless_the_start_asks_for_a_tty(loaded):
    client = loaded.client()
    try:
        c = client.containers.run("busybox", "sleep 1000", detach=True, name="framing")
        api = client.api
        ex = api.exec_create(c.id, ["sh", "-c", "tty; echo out"], tty=True)
        assert api.exec_start(ex, demux=True) == (b"/dev/pts/0\r\nout\r\n", None)  # frames, pty output
        ex = api.exec_create(c.id, ["sh", "-c", "tty; echo out"], tty=True)
        assert api.exec_start(ex, tty=True) == b"/dev/pts/0\r\nout\r\n"  # raw
        ex = api.exec_create(c.id, ["sh", "-c", "echo out; echo err >&2"])
        assert api.exec_start(ex, demux=True) == (b"out\n", b"err\n")  # no pty: two streams
        c.remove(force=True)
    finally:
        client.close()


def test_exec_of_a_missing_command_answers_with_the_error_in_the_stream(loaded):
    """dockerd answers the start and writes the error on stdout; the exec's exit code is 127."""
    client = loaded.client()
    try:
        c = client.containers.run("busybox", "sleep 1000", detach=True, name="missing-cmd")
        code, out = c.exec_run("non-existent")
        assert code == 127 and b"executable file not found" in out, out
        for run in (loaded.berth, loaded.docker):
            res = run("exec", "missing-cmd", "non-existent")
            assert res.returncode == 127, res.stderr
            assert "executable file not found" in (res.stdout + res.stderr).decode()
        c.remove(force=True)
    finally:
        client.close()
