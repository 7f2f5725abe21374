"""Run docker-py's own network integration tests against a berthd in a test network namespace.

    .venv/bin/python -m tests.network.run_docker_py DOCKER_PY_CHECKOUT [pytest args...]

DOCKER_PY_CHECKOUT is a checkout of github.com/docker/docker-py (its tests/ are not in the
wheel), or a bare clone of it (its HEAD is extracted into a temp dir). busybox is loaded and
tagged as the suite's TEST_IMG (alpine:3.10); the namespace, berthd and its data are removed
afterwards. Exits with pytest's status."""

import os
import shutil
import subprocess
import sys
import tempfile

from tests import imagefactory
from tests.api.conftest import Berthd
from tests.network.conftest import NetNs

FILES = ["tests/integration/api_network_test.py", "tests/integration/models_networks_test.py"]


def main():
    checkout, extra = sys.argv[1], sys.argv[2:]
    base = tempfile.mkdtemp(prefix="dpy", dir="/tmp")
    bare = os.path.isdir(os.path.join(checkout, "objects"))
    if bare and not os.path.isdir(os.path.join(checkout, "tests")):
        tree = os.path.join(base, "docker-py")
        os.makedirs(tree)
        archive = subprocess.Popen(["git", "--git-dir", checkout, "archive", "HEAD"], stdout=subprocess.PIPE)
        subprocess.check_call(["tar", "-x", "-C", tree], stdin=archive.stdout)
        if archive.wait():
            sys.exit("cannot read HEAD of %s" % checkout)
        checkout = tree
    ns = NetNs("bdpy%d" % os.getpid())
    d = Berthd(os.path.join(base, "d"), netns=ns.name)
    try:
        d.start()
        tar = imagefactory.busybox_image_tar(os.path.join(base, "busybox.tar"))
        with open(str(tar), "rb") as f:
            status = d.api("POST", "/images/load", body=f.read(),
                           headers={"Content-Type": "application/x-tar"})[0]
        assert status == 200
        for tag in ("3.10", "latest"):  # the suite's TEST_IMG, and plain "alpine" in models_networks_test
            assert d.api("POST", "/images/busybox:latest/tag?repo=alpine&tag=" + tag)[0] == 201
        env = dict(os.environ, DOCKER_HOST=d.host)
        env.pop("PYTHONPATH", None)
        argv = ["nsenter", "--net=/run/netns/" + ns.name, "--", sys.executable, "-m", "pytest", "-p",
                "no:cacheprovider", "-o", "addopts=", "-rA"] + FILES + extra
        code = subprocess.call(argv, cwd=checkout, env=env)
    finally:
        d.cleanup()
        ns.close()
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
