"""A fast command-line parser with argparse's `add_argument` interface (the subset berth uses).

Importing argparse (re, gettext, locale) costs more than the rest of `berth ps`, so commands
declare their flags once, through `add_argument`, and this parser handles the common case. For
`--help` and any error the same declarations are replayed into a real argparse parser, which
prints the help or docker-style usage error (exit 125).
"""

import sys

REMAINDER = "..."


class Namespace(object):
    """Parsed values as attributes."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return "Namespace(%r)" % self.__dict__


class _Fallback(Exception):
    """Let argparse handle this command line (help or an error)."""


class Parser(object):
    """Records add_argument calls; parse_args handles them without argparse when it can."""

    def __init__(self, prog, description=None, add_help=True):
        self.prog = prog
        self.description = description
        self.add_help = add_help
        self.calls = []
        self.options = {}  # flag -> spec
        self.positionals = []
        self.defaults = {}

    def add_argument(self, *flags, **kw):
        """argparse.ArgumentParser.add_argument (actions store, store_true, append, help;
        nargs None, ?, +, ...; type; choices; default; dest)."""
        self.calls.append((flags, kw))
        if flags[0].startswith("-"):
            longs = [f for f in flags if f.startswith("--")]
            dest = kw.get("dest") or (longs[0] if longs else flags[0]).lstrip("-").replace("-", "_")
            spec = dict(kw, dest=dest)
            for flag in flags:
                self.options[flag] = spec
            action = kw.get("action")
            if action == "store_true":
                self.defaults[dest] = kw.get("default", False)
            elif action == "append":
                self.defaults[dest] = list(kw.get("default") or [])
            elif action != "help":
                self.defaults[dest] = kw.get("default")
        else:
            spec = dict(kw, dest=flags[0])
            self.positionals.append(spec)
            nargs = kw.get("nargs")
            self.defaults[flags[0]] = [] if nargs in ("+", REMAINDER) else kw.get("default")

    def _value(self, spec, text):
        kind = spec.get("type")
        if kind is not None:
            try:
                text = kind(text)
            except (TypeError, ValueError):
                raise _Fallback() from None
        if spec.get("choices") and text not in spec["choices"]:
            raise _Fallback()
        return text

    def _store(self, ns, spec, value):
        action = spec.get("action")
        if action == "help":
            raise _Fallback()
        if action == "store_true":
            ns[spec["dest"]] = True
        elif action == "append":
            ns[spec["dest"]].append(self._value(spec, value))
        else:
            ns[spec["dest"]] = self._value(spec, value)

    def _parse(self, argv):
        ns = dict((k, list(v) if isinstance(v, list) else v) for k, v in self.defaults.items())
        pos = 0
        counts = [0] * len(self.positionals)
        i, n = 0, len(argv)
        only_positional = False
        while i < n:
            tok = argv[i]
            i += 1
            if (pos < len(self.positionals) and self.positionals[pos].get("nargs") == REMAINDER
                    and counts[pos]):
                ns[self.positionals[pos]["dest"]].append(tok)
                continue
            if not only_positional and tok == "--":
                only_positional = True
                continue
            if not only_positional and tok.startswith("-") and tok != "-":
                if tok in ("-h", "--help") and tok not in self.options:
                    raise _Fallback()
                if tok.startswith("--"):
                    flag, eq, value = tok.partition("=")
                    spec = self.options.get(flag)
                    if spec is None:
                        raise _Fallback()
                    if spec.get("action") in ("store_true", "help"):
                        if eq:
                            raise _Fallback()
                        self._store(ns, spec, None)
                    else:
                        if not eq:
                            if i >= n:
                                raise _Fallback()
                            value = argv[i]
                            i += 1
                        self._store(ns, spec, value)
                    continue
                j = 1
                while j < len(tok):  # -it, -e=X, -eX, -e X
                    spec = self.options.get("-" + tok[j])
                    if spec is None:
                        raise _Fallback()
                    if spec.get("action") in ("store_true", "help"):
                        self._store(ns, spec, None)
                        j += 1
                        continue
                    value = tok[j + 1:]
                    if value.startswith("="):
                        value = value[1:]
                    if not value:
                        if i >= n:
                            raise _Fallback()
                        value = argv[i]
                        i += 1
                    self._store(ns, spec, value)
                    break
                continue
            # a positional
            while pos < len(self.positionals):
                spec = self.positionals[pos]
                nargs = spec.get("nargs")
                if nargs in ("+", REMAINDER):
                    ns[spec["dest"]].append(tok)
                    counts[pos] += 1
                    break
                if counts[pos] == 0:
                    ns[spec["dest"]] = self._value(spec, tok)
                    counts[pos] = 1
                    pos += 1
                    if pos < len(self.positionals) and self.positionals[pos].get("nargs") == REMAINDER:
                        counts[pos] = 1  # everything after this positional is the command
                    break
                pos += 1
            else:
                raise _Fallback()
        for k, spec in enumerate(self.positionals):
            if spec.get("nargs") in (None, "+") and not counts[k]:
                raise _Fallback()
        return Namespace(**ns)

    def argparser(self):
        """The same declarations in a real argparse parser (exit 125 on errors)."""
        import argparse

        class _ArgParser(argparse.ArgumentParser):
            def error(self, message):
                self.print_usage(sys.stderr)
                sys.stderr.write("berth: %s\nSee '%s --help'.\n" % (message, self.prog))
                sys.exit(125)

        p = _ArgParser(prog=self.prog, description=self.description, add_help=self.add_help)
        for flags, kw in self.calls:
            kw = dict(kw)
            if kw.get("nargs") == REMAINDER:
                kw["nargs"] = argparse.REMAINDER
            p.add_argument(*flags, **kw)
        return p

    def parse_args(self, argv):
        """Parsed values; help and errors go through argparse (which exits)."""
        try:
            return self._parse(list(argv))
        except _Fallback:
            return self.argparser().parse_args(argv)


def filters_arg(items, extra=None):
    # type: (List[str], Optional[Dict[str, Any]]) -> Optional[str]
    """--filter key=value flags (plus extra, already in the API's form) as the API's filters
    JSON; `label!=k=v` is key `label!`, value `k=v`, as the docker CLI sends it."""
    out = {}  # type: Dict[str, Any]
    for item in items or []:
        key, _, value = item.partition("=")
        out.setdefault(key, {})[value] = True
    out.update(extra or {})
    if not out:
        return None
    from runtime.cli import jsonfast
    return jsonfast.dumps(out)
