"""The load campaign (bench/load_campaign.py) at a small seeded size: a population of created
and running containers, concurrent clients mixing ps, inspect, logs, run --rm and exec; no
error but berthd's documented back-pressure (503 "berthd is busy", runtime/api/admission.py),
every container still there and running as it was, no fd leaked by berthd, and the data root's
checker clean. The issue's size (200 clients, 3 minutes, 1,000 created, 200 running) is
`bench/load_campaign.py --full`."""

import importlib.util
import io
import os

import pytest

from tests.api.conftest import ROOT

pytestmark = pytest.mark.timeout(600)

SIZE = {"clients": int(os.environ.get("BERTH_LOAD_CLIENTS", "12")),
        "seconds": float(os.environ.get("BERTH_LOAD_SECONDS", "15")),
        "created": int(os.environ.get("BERTH_LOAD_CREATED", "30")),
        "running": int(os.environ.get("BERTH_LOAD_RUNNING", "8"))}


def _bench():
    path = os.path.join(ROOT, "bench", "load_campaign.py")
    spec = importlib.util.spec_from_file_location("load_campaign", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_load_holds_and_loses_nothing(tmp_path):
    bench = _bench()
    fig = bench.run(seed=int(os.environ.get("BERTH_LOAD_SEED", "18")), workdir=str(tmp_path), **SIZE)
    out = io.StringIO()
    status = bench.report(fig, out)
    print(out.getvalue())
    assert fig["results"].get("errors", []) == [], out.getvalue()  # (503 busy is counted apart)
    for op, _ in bench.MIX:
        assert fig["results"].get(op), (op, out.getvalue())
    assert status == 0 and fig["check"]["Problems"] == 0, out.getvalue()
    assert fig["listed"] == SIZE["created"] and fig["running_now"] == SIZE["running"], out.getvalue()
    _, populated, _, after = fig["fds"]
    assert after <= populated + 4, out.getvalue()  # the connections and helpers of the load are gone
