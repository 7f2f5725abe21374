"""`docker stats --no-stream`, docker-py's stats() and `docker top` / `berth top` /
`berth stats --no-stream` against berthd."""

import pytest

pytestmark = pytest.mark.timeout(120)


def test_docker_stats_top_and_docker_py(loaded):
    d = loaded
    out = d.docker("run", "-d", "--name", "st", "busybox", "sh", "-c",
                   "head -c 4000000 /dev/zero | tail -c 1 >/dev/null; exec sleep 1000")
    assert out.returncode == 0, out.stderr
    out = d.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "st")
    assert out.returncode == 0, out.stderr
    name, usage, _, limit, pids = out.stdout.decode().split()
    assert name == "st" and pids == "1"
    assert not usage.startswith("0B"), usage
    out = d.berth("stats", "--no-stream", "st")
    lines = out.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and lines[1].split()[1] == "st", lines
    out = d.docker("top", "st")
    assert out.returncode == 0 and out.stdout.decode().splitlines()[1].endswith("sleep 1000"), out.stdout
    out = d.berth("top", "st", "-o", "pid,args")
    assert out.stdout.decode().split() == ["PID", "COMMAND", out.stdout.decode().split()[2], "sleep", "1000"]
    client = d.client()
    try:
        s = client.api.stats("st", stream=False)
        for key in ["read", "networks", "precpu_stats", "cpu_stats", "memory_stats", "blkio_stats"]:
            assert key in s
        assert s["memory_stats"]["usage"] > 0
        assert client.api.top("st")["Processes"][0][-1] == "sleep 1000"
    finally:
        client.close()
    assert d.docker("rm", "-f", "st").returncode == 0
