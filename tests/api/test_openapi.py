"""docs/openapi.yaml is exactly what berthd serves (its route tables, handlers and the query
parameters they read), and schemathesis, driven by it, fuzzes a berthd on a loopback TLS
listener inside a network namespace of the test's: a bounded, seeded number of examples per
operation (`BERTH_FUZZ_EXAMPLES`, default 4; `BERTH_FUZZ_SEED`, default 18), valid and invalid.
No 5xx but those the document gives the operation (and never an "internal error"), no request
that hangs, every status documented, and berthd still serving with its data root clean after."""

import json
import os
import subprocess
import time

import pytest
import yaml

from runtime.network import netns as nsmod
from tests.api import routescan
from tests.api.conftest import ROOT, Berthd
from tests.api.test_tcp_tls import _ca, _signed

pytestmark = pytest.mark.timeout(900)

DOC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")
EXAMPLES = int(os.environ.get("BERTH_FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("BERTH_FUZZ_SEED", "18"))
# operations not fuzzed, and why (each is covered by its own tests)
SKIP = {
    ("POST", "/images/create"): "a pull reaches registries on the network",
    ("POST", "/images/{name}/push"): "a push reaches registries on the network",
    ("POST", "/auth"): "a login reaches registries on the network",
    ("POST", "/build"): "FROM pulls from registries on the network",
    ("GET", "/events"): "a stream that ends only when the client goes",
}
TIMEOUT = 30


def _doc():
    with open(DOC_PATH) as f:
        return yaml.safe_load(f)


def _documented():
    """{(METHOD, path): operation} of the document."""
    return {(method.upper(), path): op for path, ops in _doc()["paths"].items() for method, op in ops.items()}


def test_the_document_is_what_berthd_serves():
    doc = _documented()
    served = {(m, p): (h, params) for m, p, h, params in routescan.served()}
    assert sorted(set(served) - set(doc)) == [], "served but not in docs/openapi.yaml"
    assert sorted(set(doc) - set(served)) == [], "in docs/openapi.yaml but not served"
    for key, (handler, params) in sorted(served.items()):
        op = doc[key]
        assert op["x-handler"] == handler, key
        query = {p["name"]: p["schema"]["type"] for p in op.get("parameters", []) if p["in"] == "query"}
        assert query == params, (key, "documented", query, "read by the handler", params)
        path_params = sorted(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
        assert path_params == sorted(routescan.re.findall(r"\{(\w+)\}", key[1])), key
        assert op["responses"], key
        for status in op["responses"]:
            assert str(status).isdigit(), (key, status)


@pytest.fixture(scope="module")
def fuzzd(tmp_path_factory, busybox_tar):
    """berthd in a network namespace of ours, TLS (tlsverify) on 127.0.0.1 there."""
    from tests.registry.registries import free_port
    d = str(tmp_path_factory.mktemp("fuzz-tls"))
    _ca(d, "good")
    _signed(d, "good", "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _signed(d, "good", "client", "extendedKeyUsage=clientAuth\n")
    name = "bfz%d" % os.getpid()
    subprocess.check_call(["ip", "netns", "add", name])
    subprocess.check_call(["ip", "-n", name, "link", "set", "lo", "up"])
    fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)
    port = free_port()
    b = Berthd(str(tmp_path_factory.mktemp("fuzzd")), netns=name, config={
        "tlsverify": True, "tlscacert": os.path.join(d, "good-ca.pem"),
        "tlscert": os.path.join(d, "server.pem"), "tlskey": os.path.join(d, "server-key.pem")},
        extra_args=["-H", "tcp://127.0.0.1:%d" % port])
    try:
        b.start()
        with open(busybox_tar, "rb") as f:
            assert b.api("POST", "/images/load", body=f.read())[0] == 200
        b.base_url = "https://127.0.0.1:%d" % port
        b.netns_fd = fd
        b.client_cert = (os.path.join(d, "client.pem"), os.path.join(d, "client-key.pem"))
        b.ca = os.path.join(d, "good-ca.pem")
        yield b
    finally:
        b.cleanup()
        os.close(fd)
        subprocess.call(["ip", "netns", "del", name])


class _Tally(object):
    """Requests made, statuses seen and failures found."""

    def __init__(self):
        self.made, self.statuses, self.failures = 0, {}, []

    def check(self, d, session, key, responses, case):
        """Send one case and judge the answer."""
        import requests
        self.made += 1
        started = time.time()
        where = "%s %s" % key
        try:
            response = case.call(base_url=d.base_url, session=session, timeout=TIMEOUT,
                                 verify=d.ca, cert=d.client_cert)
        except requests.RequestException as exc:
            self.failures.append("%s: no answer in %ds (%s) for %s" % (
                where, time.time() - started, type(exc).__name__, case.as_curl_command()))
            return
        status = str(response.status_code)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        try:
            message = (response.json() or {}).get("message", "") if response.content else ""
        except (ValueError, AttributeError):
            message = ""
        if response.status_code >= 500 and (status not in responses or message.startswith("internal error")):
            self.failures.append("%s: %s %r for %s" % (where, status, message, case.as_curl_command()))
        elif status not in responses:
            self.failures.append("%s: undocumented %s %r for %s" % (where, status, message,
                                                                   case.as_curl_command()))


def _runner(strategy, send):
    """A seeded, bounded hypothesis run of send(case) over strategy."""
    from hypothesis import HealthCheck, Phase, given, seed, settings

    @seed(SEED)
    @settings(max_examples=EXAMPLES, database=None, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate], report_multiple_bugs=False)
    @given(case=strategy)
    def run(case):
        send(case)
    return run


def _fuzz(d, doc):
    """Run every operation's cases (valid, and invalid where there are parameters or a body);
    returns the _Tally."""
    import functools

    import requests
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
    schema = schemathesis.openapi.from_dict(doc)
    session = requests.Session()
    session.cert, session.verify, session.trust_env = d.client_cert, d.ca, False
    tally = _Tally()
    documented = _documented()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIP:
            continue
        op = documented[key]
        responses = {str(s) for s in op["responses"]}
        # invalid input where there is some beyond the path (negating a lone path parameter
        # costs seconds of generation and reaches the same 404)
        negative = "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", []))
        send = functools.partial(tally.check, d, session, key, responses)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[:2 if negative else 1]:
            try:
                _runner(operation.as_strategy(generation_mode=mode), send)()
            except Unsatisfiable:  # no invalid input to make
                pass
    return tally


def test_schemathesis_finds_no_server_error_and_no_hang(fuzzd):
    tally = nsmod.run_in(fuzzd.netns_fd, _fuzz, fuzzd, _doc())
    print("schemathesis: %d requests over %d operations (seed %d, %d examples each), statuses %s, "
          "%d failure(s)" % (tally.made, len(_documented()) - len(SKIP), SEED, EXAMPLES,
                             json.dumps(tally.statuses, sort_keys=True), len(tally.failures)))
    assert tally.failures == [], "\n".join(sorted(set(tally.failures))[:40])
    # still serving, on both listeners, and nothing broken on disk
    assert fuzzd.api("GET", "/_ping")[0] == 200

    def ping():
        import requests
        with requests.Session() as s:
            s.cert, s.verify, s.trust_env = fuzzd.client_cert, fuzzd.ca, False
            return s.get(fuzzd.base_url + "/_ping", timeout=10).text
    assert nsmod.run_in(fuzzd.netns_fd, ping) == "OK"
    report = json.loads(fuzzd.api("GET", "/berth/check")[2])
    assert report["Problems"] == 0, report
    assert tally.made >= 2 * (len(_documented()) - len(SKIP))  # (one case without parameters)
