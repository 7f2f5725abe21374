"""A reply body made of summaries that carry their own JSON (runtime/container/views.Summary,
sent as is by runtime/api/server.json_body) says what the dicts hold, also once changed."""

import json

from runtime.api.server import json_body
from runtime.container.views import Summary


def _summary(**kw):
    s = Summary(kw)
    s.json_bytes = json.dumps(kw).encode()
    return s


def test_kept_json_is_sent_and_a_changed_summary_is_encoded_again():
    a, b = _summary(Id="a", Status="Up"), _summary(Id="b", Status="Exited (0)")
    a.json_bytes = b'{"Id": "a", "Status": "Up", "Kept": true}'  # proves the kept bytes are sent
    assert json.loads(json_body([a, {"Id": "plain"}])) == [
        {"Id": "a", "Status": "Up", "Kept": True}, {"Id": "plain"}]
    b["SizeRw"] = 12  # as `system df` does
    c = _summary(Id="c")
    c.update(SizeRw=1)
    d = _summary(Id="d", Gone=1)
    del d["Gone"]
    assert json.loads(json_body([b, c, d])) == [
        {"Id": "b", "Status": "Exited (0)", "SizeRw": 12}, {"Id": "c", "SizeRw": 1}, {"Id": "d"}]
    assert json_body({"Containers": [b]}) == json.dumps({"Containers": [b]}).encode() + b"\n"
