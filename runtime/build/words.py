"""Shell-style words as Dockerfiles use them (Docker's ShellLex): quote removal, backslash
escapes and `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`
expansion. No command substitution, no globbing: this is not a shell."""

import re

from runtime.errors import InvalidParameter

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split(text, escape="\\"):
    # type: (str, str) -> list
    """Split on unquoted whitespace, keeping quotes and escapes in the words (they are removed
    by expand): `a="b c" d` -> ['a="b c"', 'd']."""
    words, cur, quote, i, have = [], [], None, 0, False
    while i < len(text):
        ch = text[i]
        if quote is None and ch.isspace():
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        have = True
        if ch == escape and quote != "'" and i + 1 < len(text):
            cur.append(ch + text[i + 1])
            i += 2
            continue
        if ch in "'\"":
            if quote is None:
                quote = ch
            elif quote == ch:
                quote = None
        cur.append(ch)
        i += 1
    if quote is not None:
        raise InvalidParameter("unmatched %s quote in %r" % (quote, text))
    if have:
        words.append("".join(cur))
    return words


def expand(word, env, escape="\\"):
    # type: (str, dict, str) -> str
    """Remove quotes and escapes and substitute variables from env (missing ones are empty)."""
    return _Expander(word, env, escape).run()


def expand_all(text, env, escape="\\"):
    # type: (str, dict, str) -> list
    """split() then expand() each word (words that expand to nothing are kept as "")."""
    return [expand(w, env, escape) for w in split(text, escape)]


class _Expander(object):
    def __init__(self, text, env, escape):
        self.text, self.env, self.escape, self.i = text, env, escape, 0

    def run(self, stop=""):
        # type: (str) -> str
        out = []
        t = self.text
        while self.i < len(t):
            ch = t[self.i]
            if ch in stop:
                break
            if ch == self.escape:
                if self.i + 1 < len(t):
                    out.append(t[self.i + 1])
                    self.i += 2
                else:
                    out.append(ch)
                    self.i += 1
            elif ch == "'":
                end = t.find("'", self.i + 1)
                if end < 0:
                    raise InvalidParameter("unmatched ' quote in %r" % t)
                out.append(t[self.i + 1:end])
                self.i = end + 1
            elif ch == '"':
                self.i += 1
                out.append(self._double())
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
                self.i += 1
        return "".join(out)

    def _double(self):
        # type: () -> str
        out, t = [], self.text
        while self.i < len(t):
            ch = t[self.i]
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == self.escape and self.i + 1 < len(t) and t[self.i + 1] in '"$' + self.escape:
                out.append(t[self.i + 1])
                self.i += 2
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
                self.i += 1
        raise InvalidParameter('unmatched " quote in %r' % t)

    def _dollar(self):
        # type: () -> str
        t = self.text
        self.i += 1
        if self.i < len(t) and t[self.i] == "{":
            self.i += 1
            m = _NAME.match(t, self.i)
            if not m:
                raise InvalidParameter("bad substitution in %r: ${ must be followed by a name" % t)
            name = m.group()
            self.i = m.end()
            if self.i < len(t) and t[self.i] == "}":
                self.i += 1
                return self.env.get(name, "")
            colon = t.startswith(":", self.i)
            if colon:
                self.i += 1
            op = t[self.i] if self.i < len(t) else ""
            if op not in ("-", "+"):
                raise InvalidParameter("unsupported modifier %r in ${%s} of %r: use :- or :+"
                                       % (op, name, t))
            self.i += 1
            word = self.run(stop="}")
            if self.i >= len(t):
                raise InvalidParameter("missing } in %r" % t)
            self.i += 1
            value = self.env.get(name)
            is_set = value is not None and (value != "" or not colon)
            if op == "-":
                return value if is_set else word
            return word if is_set else ""
        m = _NAME.match(t, self.i)
        if not m:
            return "$"
        self.i = m.end()
        return self.env.get(m.group(), "")
