"""JSON without importing the json package (its decoder pulls in `re`): the C scanner and
string encoder from `_json`, which json itself uses. Falls back to json where _json is missing."""

try:
    import _json
except ImportError:  # pragma: no cover (PyPy and friends)
    _json = None


class _Context(object):
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_Context()) if _json else None
_WS = " \t\r\n"


def loads(data):
    """Decode one JSON text (str or UTF-8 bytes)."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8")
    if _scan is None:  # pragma: no cover
        import json
        return json.loads(data)
    text = data.strip(_WS)
    try:
        obj, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("invalid JSON: %.40r" % text) from None
    if end != len(text):
        raise ValueError("extra data after JSON: %.40r" % text[end:])
    return obj


def dumps(obj):
    """Encode dicts, lists, strings, numbers, booleans and None (ASCII-safe)."""
    if _json is None:  # pragma: no cover
        import json
        return json.dumps(obj)
    out = []
    _encode(obj, out.append)
    return "".join(out)


def _encode(obj, put):
    if obj is None:
        put("null")
    elif obj is True:
        put("true")
    elif obj is False:
        put("false")
    elif isinstance(obj, str):
        put(_json.encode_basestring_ascii(obj))
    elif isinstance(obj, (int, float)):
        put(repr(obj) if isinstance(obj, float) else str(int(obj)))
    elif isinstance(obj, dict):
        put("{")
        for k, (key, value) in enumerate(obj.items()):
            if k:
                put(", ")
            put(_json.encode_basestring_ascii(str(key)))
            put(": ")
            _encode(value, put)
        put("}")
    elif isinstance(obj, (list, tuple)):
        put("[")
        for k, value in enumerate(obj):
            if k:
                put(", ")
            _encode(value, put)
        put("]")
    else:
        raise TypeError("cannot encode %r as JSON" % type(obj).__name__)
