"""The Dockerfile parser: parser directives, comments, line continuations, instruction flags
and JSON forms, each instruction with the line it starts on.

Errors are InvalidParameter("Dockerfile line N: what is wrong ..."); nothing is run before the
whole file parses.
"""

import json
import re

from runtime import TYPE_CHECKING
from runtime.errors import InvalidParameter

if TYPE_CHECKING:
    from typing import Dict, List, Optional  # noqa: F401

INSTRUCTIONS = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
                "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
                "HEALTHCHECK", "SHELL")
FLAGS = {
    "FROM": ("platform",),
    "COPY": ("chown", "from", "chmod", "link", "parents", "exclude"),
    "ADD": ("chown", "chmod", "checksum", "keep-git-dir", "link", "exclude"),
    "RUN": ("mount", "network", "security"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "start-interval", "retries"),
}
JSON_FORMS = ("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME")
_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<-?\s*([\"']?)[A-Za-z_][A-Za-z0-9_]*\1")


class Instruction(object):
    """One instruction: `cmd` upper case, `args` the text after the flags, `flags` {name: value}
    (repeatable flags keep their last value; `flag_list` has them all), `json` the list of a
    JSON form (else None), `line` where it starts, `original` as written (continuations joined)."""

    def __init__(self, cmd, args, flags, flag_list, json_args, line, original):
        # type: (str, str, Dict[str, str], List[tuple], Optional[List[str]], int, str) -> None
        self.cmd = cmd
        self.args = args
        self.flags = flags
        self.flag_list = flag_list
        self.json = json_args
        self.line = line
        self.original = original

    def error(self, what):
        # type: (str) -> InvalidParameter
        """An InvalidParameter naming this instruction's line."""
        return InvalidParameter("Dockerfile line %d: %s: %s" % (self.line, self.cmd, what))

    def __repr__(self):
        return "Instruction(%r, line %d)" % (self.original, self.line)


class Dockerfile(object):
    """A parsed Dockerfile: `instructions`, `escape` char, `notes` (lines for the user, such as
    an ignored `# syntax`)."""

    def __init__(self, instructions, escape, notes):
        # type: (List[Instruction], str, List[str]) -> None
        self.instructions = instructions
        self.escape = escape
        self.notes = notes


def parse(data):
    # type: (object) -> Dockerfile
    """Parse a Dockerfile (bytes or text)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidParameter("the Dockerfile is not UTF-8 text (byte %d)" % exc.start) from None
    text = data.lstrip("\ufeff")
    lines = text.split("\n")
    escape, notes, start = "\\", [], 0
    seen = set()
    for idx, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw.strip())
        if not m:
            break
        name, value = m.group(1).lower(), m.group(2)
        if name not in ("escape", "syntax", "check"):
            break  # an ordinary comment ends the directives
        if name in seen:
            raise InvalidParameter("Dockerfile line %d: only one %s parser directive can be used"
                                   % (idx + 1, name))
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise InvalidParameter("Dockerfile line %d: invalid escape token %r: use \\ or `"
                                       % (idx + 1, value))
            escape = value
        elif name == "syntax":
            notes.append("ignoring the '# syntax=%s' directive: berth's builder has its own "
                         "Dockerfile frontend" % value)
        start = idx + 1
    instructions = []
    cont = re.compile(re.escape(escape) + r"[ \t]*$")
    i = start
    while i < len(lines):
        raw = lines[i].rstrip("\r")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first, parts = i + 1, []
        line = raw.lstrip()
        while True:
            m = cont.search(line)
            if not m:
                parts.append(line)
                i += 1
                break
            parts.append(line[:m.start()])
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1  # comments and blank lines inside a continuation are dropped
            if i >= len(lines):
                break
            line = lines[i].rstrip("\r")
        instructions.append(parse_line("".join(parts).strip(), first, escape))
    if not instructions:
        raise InvalidParameter("the Dockerfile has no instructions: it needs at least a FROM")
    return Dockerfile(instructions, escape, notes)


def parse_line(text, line, escape="\\"):
    # type: (str, int, str) -> Instruction
    """One logical line (continuations joined) as an Instruction."""
    m = re.match(r"(\S+)\s*(.*)$", text, re.S)
    word, rest = m.group(1), m.group(2).strip()
    cmd = word.upper()
    if cmd not in INSTRUCTIONS:
        raise InvalidParameter("Dockerfile line %d: unknown instruction: %s (known: %s)"
                               % (line, word, ", ".join(INSTRUCTIONS)))
    flags, flag_list = {}, []
    allowed = FLAGS.get(cmd, ())
    while rest.startswith("--"):
        token, _, after = rest.partition(" ")
        name, eq, value = token[2:].partition("=")
        if not name:
            break
        if name not in allowed:
            raise InvalidParameter("Dockerfile line %d: %s: unknown flag: --%s%s"
                                   % (line, cmd, name, (" (allowed: %s)" % ", ".join(
                                       "--" + a for a in allowed)) if allowed else ""))
        if not eq and name not in ("link", "parents", "keep-git-dir"):
            raise InvalidParameter("Dockerfile line %d: %s: --%s needs a value: --%s=VALUE"
                                   % (line, cmd, name, name))
        flags[name] = value if eq else "true"
        flag_list.append((name, flags[name]))
        rest = after.strip()
    json_args = None
    if cmd in JSON_FORMS and rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            json_args = value
    if cmd in ("RUN", "COPY", "ADD") and json_args is None and _HEREDOC.search(rest):
        raise InvalidParameter(
            "Dockerfile line %d: %s: heredocs (<<WORD) are not supported by berth's builder: "
            "write the content to a file in the context and COPY it, or use printf in RUN"
            % (line, cmd))
    if not rest and cmd not in ("CMD", "ENTRYPOINT", "RUN") or cmd == "RUN" and not rest:
        raise InvalidParameter("Dockerfile line %d: %s requires at least one argument" % (line, cmd))
    if cmd == "SHELL" and json_args is None:
        raise InvalidParameter('Dockerfile line %d: SHELL requires the arguments to be in JSON '
                               'form: SHELL ["/bin/sh", "-c"]' % line)
    return Instruction(cmd, rest, flags, flag_list, json_args, line, text)
