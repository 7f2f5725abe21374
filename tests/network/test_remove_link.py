"""`docker rm --link /NAME/ALIAS` (`DELETE /containers/NAME/ALIAS?link=1`): the legacy link goes
from the container's record, so its next start has no entry or variables for it."""

import json


def test_rm_link_removes_the_link(clean):
    d = clean
    assert d.docker("run", "-d", "--name", "lk-db", "busybox", "sleep", "1000").returncode == 0
    assert d.docker("create", "--name", "lk-app", "--link", "lk-db:mylink", "busybox",
                    "sh", "-c", "env; cat /etc/hosts").returncode == 0
    out = d.docker("rm", "--link", "/lk-app/mylink")
    assert out.returncode == 0, out.stderr
    info = json.loads(d.api("GET", "/containers/lk-app/json")[2])
    assert not info["HostConfig"]["Links"]
    out = d.docker("start", "-a", "lk-app")
    assert out.returncode == 0 and b"mylink" not in out.stdout.lower(), out.stdout
    out = d.docker("rm", "--link", "/lk-app/mylink")
    assert out.returncode != 0 and "Could not find link mylink" in out.stderr.decode()
    assert d.api("DELETE", "/containers/lk-app/mylink")[0] == 404  # without link=1: no such container
    assert d.docker("rm", "-f", "lk-db", "lk-app").returncode == 0
