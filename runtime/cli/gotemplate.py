"""Go text/template as docker users write it in `--format` and `inspect -f`: `{{.A.B}}`,
`{{json .}}`, `{{index .M "k"}}`, `{{range .L}}...{{end}}`, `{{if}}/{{else}}/{{with}}`,
pipelines (`{{.Names | upper}}`), `$`, string and number literals, `{{-`/`-}}` trimming and
docker's functions (json, index, join, split, upper, lower, title, len, printf, print,
println, pad, truncate). A template error is ValueError naming what is wrong."""

import json
import re

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List  # noqa: F401

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(\(|\)|\||"(?:\\.|[^"\\])*"|`[^`]*`|[^\s()|]+)')


def go_string(value):
    # type: (Any) -> str
    """A value printed as Go's fmt prints it (maps as map[k:v], lists as [a b])."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return "%d" % value
    if isinstance(value, dict):
        return "map[" + " ".join("%s:%s" % (k, go_string(value[k])) for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def _truthy(value):
    # type: (Any) -> bool
    return bool(value) and value != "<no value>"


def _index(value, *keys):
    for key in keys:
        if isinstance(value, (list, tuple)):
            value = value[int(key)]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            raise ValueError("can't index item of type %s" % type(value).__name__)
    return value


def _printf(fmt, *args):
    # type: (str, Any) -> str
    py = re.sub(r"%v|%q|%d|%s", lambda m: {"%q": "%r"}.get(m.group(0), "%s"), fmt)
    return py % tuple(go_string(a) if not isinstance(a, str) else a for a in args)


FUNCS = {
    "json": lambda v: json.dumps(v, separators=(",", ":")),
    "index": _index,
    "join": lambda items, sep: sep.join(go_string(i) for i in (items or [])),
    "split": lambda text, sep: text.split(sep),
    "upper": lambda s: go_string(s).upper(),
    "lower": lambda s: go_string(s).lower(),
    "title": lambda s: go_string(s).title(),
    "len": lambda v: len(v or []),
    "printf": _printf,
    "print": lambda *a: "".join(go_string(x) for x in a),
    "println": lambda *a: " ".join(go_string(x) for x in a) + "\n",
    "pad": lambda s, left, right: " " * int(left) + go_string(s) + " " * int(right),
    "truncate": lambda s, n: go_string(s)[:int(n)],
}  # type: Dict[str, Callable]


def _parse(text):
    # type: (str) -> list
    """The template as a tree: str for text, ("expr", tokens), ("range"|"if"|"with", tokens,
    body, else_body)."""
    pieces = []
    pos = 0
    for m in _ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        if pieces and isinstance(pieces[-1], tuple) and pieces[-1][0] == "trim":
            chunk = chunk.lstrip()
            pieces.pop()
        pieces.append(chunk)
        pieces.append(("action", m.group(2).strip()))
        if m.group(3):
            pieces.append(("trim",))
        pos = m.end()
    chunk = text[pos:]
    if pieces and isinstance(pieces[-1], tuple) and pieces[-1][0] == "trim":
        chunk = chunk.lstrip()
        pieces.pop()
    pieces.append(chunk)
    if any(isinstance(p, str) and "{{" in p for p in pieces):
        raise ValueError("template: unclosed action in %r" % text)
    tree, _ = _block(pieces, 0, top=True)
    return tree


def _block(pieces, i, top=False):
    # type: (list, int, bool) -> tuple
    out = []
    while i < len(pieces):
        p = pieces[i]
        i += 1
        if isinstance(p, str):
            if p:
                out.append(p)
            continue
        body = p[1]
        word = body.split(None, 1)[0] if body else ""
        if word in ("end", "else"):
            if top:
                raise ValueError("template: unexpected {{%s}}" % word)
            return out, i - 1
        if word in ("range", "if", "with"):
            inner, i = _block(pieces, i)
            other = []
            if i < len(pieces) and pieces[i][1].split(None, 1)[0] == "else":
                i += 1
                other, i = _block(pieces, i)
            if i >= len(pieces) or pieces[i][1] != "end":
                raise ValueError("template: unexpected EOF: {{%s}} has no {{end}}" % word)
            i += 1
            out.append((word, _tokens(body[len(word):]), inner, other))
            continue
        if body.startswith("/*"):
            continue
        out.append(("expr", _tokens(body)))
    if not top:
        raise ValueError("template: unexpected EOF: a block has no {{end}}")
    return out, i


def _tokens(text):
    # type: (str) -> list
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError("template: cannot parse %r" % text)
        out.append(m.group(1))
        pos = m.end()
    return out


class _Scope(object):
    def __init__(self, root, dot, variables):
        self.root, self.dot, self.vars = root, dot, variables


def _field(value, path):
    # type: (Any, str) -> Any
    for name in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            if name not in value:
                return None
            value = value[name]
        elif value is None:
            return None
        else:
            raise ValueError("template: can't evaluate field %s in type %s"
                             % (name, type(value).__name__))
    return value


def _operand(tok, scope):
    # type: (str, _Scope) -> Any
    if tok == ".":
        return scope.dot
    if tok.startswith("."):
        return _field(scope.dot, tok)
    if tok.startswith("$"):
        name, _, rest = tok.partition(".")
        if name == "$":
            base = scope.root
        elif name in scope.vars:
            base = scope.vars[name]
        else:
            raise ValueError("template: undefined variable %s" % name)
        return _field(base, rest)
    if tok.startswith('"'):
        return json.loads(tok)
    if tok.startswith("`"):
        return tok[1:-1]
    if tok in ("true", "false"):
        return tok == "true"
    if tok == "nil":
        return None
    if re.match(r"^-?\d+(\.\d+)?$", tok):
        return float(tok) if "." in tok else int(tok)
    raise ValueError('template: function "%s" not defined' % tok)


def _command(tokens, scope, piped=None, has_piped=False):
    # type: (list, _Scope, Any, bool) -> Any
    if not tokens:
        raise ValueError("template: missing value for command")
    args = []
    i = 1
    while i < len(tokens):
        if tokens[i] == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                j += 1
            args.append(_pipeline(tokens[i + 1:j - 1], scope))
            i = j
        else:
            args.append(_operand(tokens[i], scope))
            i += 1
    if has_piped:
        args.append(piped)
    head = tokens[0]
    if head in FUNCS:
        try:
            return FUNCS[head](*args)
        except (TypeError, KeyError, IndexError) as exc:
            raise ValueError("template: error calling %s: %s" % (head, exc)) from None
    if args:
        raise ValueError("template: can't give argument to non-function %s" % head)
    return _operand(head, scope)


def _pipeline(tokens, scope):
    # type: (list, _Scope) -> Any
    if len(tokens) >= 2 and tokens[0].startswith("$") and tokens[1] == ":=":
        value = _pipeline(tokens[2:], scope)
        scope.vars[tokens[0]] = value
        return ""
    if tokens and tokens[0] == "(" and tokens[-1] == ")":
        return _pipeline(tokens[1:-1], scope)
    parts, cur, depth = [], [], 0
    for tok in tokens:
        depth += {"(": 1, ")": -1}.get(tok, 0)
        if tok == "|" and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(tok)
    parts.append(cur)
    value = _command(parts[0], scope)
    for part in parts[1:]:
        value = _command(part, scope, value, True)
    return value


def _run(nodes, scope, out):
    # type: (list, _Scope, list) -> None
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "expr":
            value = _pipeline(node[1], scope)
            if not (len(node[1]) >= 2 and node[1][1] == ":="):
                out.append(go_string(value))
        elif node[0] in ("if", "with"):
            value = _pipeline(node[1], scope)
            if _truthy(value):
                _run(node[2], _Scope(scope.root, value if node[0] == "with" else scope.dot,
                                     scope.vars), out)
            else:
                _run(node[3], scope, out)
        else:  # range
            tokens, names = node[1], []
            if ":=" in tokens:
                at = tokens.index(":=")
                names = [t.rstrip(",") for t in tokens[:at]]
                tokens = tokens[at + 1:]
            value = _pipeline(tokens, scope)
            items = sorted(value.items()) if isinstance(value, dict) else \
                list(enumerate(value or []))
            if not items:
                _run(node[3], scope, out)
            for key, item in items:
                variables = dict(scope.vars)
                if len(names) == 1:
                    variables[names[0]] = item
                elif len(names) == 2:
                    variables[names[0]], variables[names[1]] = key, item
                _run(node[2], _Scope(scope.root, item, variables), out)


class Template(object):
    """A parsed template; render(data) -> str. ValueError for a malformed template."""

    def __init__(self, text):
        # type: (str) -> None
        self.text = text
        self.tree = _parse(text)

    def render(self, data):
        # type: (Any) -> str
        out = []  # type: List[str]
        _run(self.tree, _Scope(data, data, {}), out)
        return "".join(out)


def expand_escapes(text):
    # type: (str) -> str
    r"""`\t` and `\n` typed on a command line, as docker's formatter expands them."""
    return text.replace("\\t", "\t").replace("\\n", "\n")


def tabulate(rows, out):
    # type: (List[str], Any) -> None
    """Lines with tab-separated cells aligned as docker's tabwriter (minwidth 10, padding 3)."""
    split = [r.split("\t") for r in rows]
    widths = {}  # type: Dict[int, int]
    for cells in split:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths.get(i, 10 - 3), len(cell))
    for cells in split:
        line = "".join(c.ljust(widths[i] + 3) if i < len(cells) - 1 else c
                       for i, c in enumerate(cells))
        out.write(line.rstrip() + "\n" if line.strip() else line + "\n")


def render_list(fmt, items, headers, out):
    # type: (str, List[dict], Dict[str, str], Any) -> None
    """`--format` of a list command: `table ...` prints a header row (docker's column names
    from headers) and aligns columns; otherwise one rendered line per item."""
    fmt = expand_escapes(fmt)
    is_table = fmt.startswith("table")
    body = fmt[5:].lstrip() if is_table else fmt
    tmpl = Template(body)
    lines = [tmpl.render(item) for item in items]
    if not is_table:
        out.write("".join(line + "\n" for line in lines))
        return
    head = re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: headers.get(m.group(1), m.group(1).upper()), body)
    head = re.sub(r"\{\{.*?\}\}", "", head)
    tabulate([head] + lines, out)
