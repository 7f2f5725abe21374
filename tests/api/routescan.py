"""What berthd serves, read from its route tables and handler sources: each route's method, path
(OpenAPI form), handler, and the query parameters the handler reads with their types. Used by
tests/api/test_openapi.py to hold docs/openapi.yaml to exactly that."""

import inspect
import re

from runtime.api.routes import build, containers, execs, images, networks, swarm, system, volumes

TABLES = (system, containers, execs, images, volumes, networks, build, swarm)
_ACCESSOR = {"arg": "string", "flag": "boolean", "int_arg": "integer", "args": "array"}
_READ = re.compile(r'req\.(arg|flag|int_arg|args)\(\s*"([\w-]+)"')
_HELPER_ARG = re.compile(r'\b(\w+)\(req, "([\w-]+)"')
_LOOP = re.compile(r"for (\w+), \w+ in (\w+):\s*\n\s*\w+ = req\.(\w+)\(\1")
_LITERAL_LOOP = re.compile(r"for (\w+) in \(((?:\s*\"[\w-]+\",?)+)\):\s*\n\s*(?:if |\w+ = )?req\.(\w+)\(\1")


def openapi_path(pattern):
    """`/images/{name:.*}/json` -> `/images/{name}/json`."""
    return re.sub(r"\{(\w+):\.\*\}", r"{\1}", pattern)


def _functions(module, handler):
    """handler and the module's functions it calls, transitively."""
    seen, todo = [], [handler]
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.append(fn)
        src = inspect.getsource(fn)
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and obj not in seen \
                    and re.search(r"\b%s\(" % re.escape(name), src):
                todo.append(obj)
    return seen


def query_params(module, handler):
    """{name: OpenAPI type} of the query parameters handler reads (itself or through helpers)."""
    out = {}
    for fn in _functions(module, handler):
        src = inspect.getsource(fn)
        for accessor, name in _READ.findall(src):
            out[name] = _ACCESSOR[accessor]
        if "req.filters()" in src:
            out["filters"] = "string"
        for helper, name in _HELPER_ARG.findall(src):
            hsrc = inspect.getsource(getattr(module, helper)) if hasattr(module, helper) else ""
            m = re.search(r"req\.(arg|flag|int_arg|args)\(name", hsrc)
            if m:
                out.setdefault(name, _ACCESSOR[m.group(1)])
        # an inner `def f(key)` reading req.arg(key), called as f("since")
        for inner in re.findall(r"def (\w+)\(key\):\s*\n(?:.*\n){0,2}?.*req\.arg\(key\)", src):
            for name in re.findall(r'\b%s\("([\w-]+)"\)' % inner, src):
                out[name] = "string"
        for _, const, accessor in _LOOP.findall(src):
            for name, _key in getattr(module, const):
                out[name] = _ACCESSOR[accessor]
        for _, names, accessor in _LITERAL_LOOP.findall(src):
            for name in re.findall(r'"([\w-]+)"', names):
                out[name] = _ACCESSOR[accessor]
    return out


def served():
    """[(method, path, handler's dotted name, {param: type})] of every route."""
    out = []
    for module in TABLES:
        for method, pattern, handler in module.ROUTES:
            out.append((method, openapi_path(pattern), "%s.%s" % (module.__name__, handler.__name__),
                        query_params(module, handler)))
    return out
