"""Ansible inventories, read the way Ansible reads them: INI or YAML files (or a directory of
them), groups and their children, host ranges (``web[01:20]``, ``db-[a:c]``), inline and
``:vars`` variables, and ``group_vars/`` + ``host_vars/`` beside the inventory.

Variables are merged per host with Ansible's precedence: the ``all`` group, then the other
groups from the shallowest to the deepest (same depth: by name), each group's inventory
variables before its ``group_vars/`` file, then the host's inline variables, then
``host_vars/``. What the variables mean to provision is :mod:`provision.hostvars`'s job.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import shlex
import string
from dataclasses import dataclass, field

from provision.errors import InputError

ALL, UNGROUPED = "all", "ungrouped"
VAR_EXTS = ("", ".yml", ".yaml", ".json")
_SKIP = (".retry", ".orig", ".cfg", ".md", ".pyc", ".ini~", "~")
_RANGE = re.compile(r"\[([^\]:]+):([^\]:]+)(?::(\d+))?\]")


@dataclass
class Group:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict = field(default_factory=dict)


@dataclass
class Inventory:
    """Hosts in the order the inventory names them, groups, and the variables of each."""

    hosts: dict[str, dict] = field(default_factory=dict)  # name -> inline variables
    groups: dict[str, Group] = field(default_factory=dict)
    host_files: dict[str, dict] = field(default_factory=dict)  # host_vars/
    group_files: dict[str, dict] = field(default_factory=dict)  # group_vars/

    def group(self, name: str) -> Group:
        if name not in self.groups:
            self.groups[name] = Group(name)
        return self.groups[name]

    def add_host(self, name: str, group: str, variables: dict) -> None:
        self.hosts.setdefault(name, {}).update(variables)
        g = self.group(group)
        if name not in g.hosts:
            g.hosts.append(name)

    def members(self, group: str) -> list[str]:
        """Every host of ``group`` and its children, in inventory order."""
        if group == ALL:
            return list(self.hosts)
        seen: set[str] = set()
        stack = [group]
        found: set[str] = set()
        while stack:
            g = self.groups.get(stack.pop())
            if g is None or g.name in seen:
                continue
            seen.add(g.name)
            found.update(g.hosts)
            stack += g.children
        return [h for h in self.hosts if h in found]

    def groups_of(self, host: str) -> list[str]:
        """The groups ``host`` belongs to, directly or through children, ``all`` first, then by
        depth and name: the order their variables apply in."""
        names = [g for g in self.groups if g != ALL and host in self.members(g)]
        return [ALL] + sorted(names, key=lambda g: (self._depth(g, set()), g))

    def _depth(self, name: str, seen: set[str]) -> int:
        parents = [g.name for g in self.groups.values() if name in g.children and g.name not in seen]
        return 1 + max((self._depth(p, seen | {name}) for p in parents), default=0)

    def host_vars(self, host: str) -> dict:
        """The variables of ``host`` after every group's, with Ansible's precedence."""
        merged: dict = {}
        for g in self.groups_of(host):
            merged.update(self.groups[g].vars if g in self.groups else {})
            merged.update(self.group_files.get(g, {}))
        merged.update(self.hosts[host])
        merged.update(self.host_files.get(host, {}))
        merged.setdefault("inventory_hostname", host)
        return merged


def expand(pattern: str) -> list[str]:
    """``web[01:03]`` -> web01 web02 web03; ``db-[a:c]`` -> db-a db-b db-c; several ranges
    multiply. Numeric bounds keep the first bound's width (leading zeros)."""
    parts: list[list[str]] = []
    pos = 0
    for m in _RANGE.finditer(pattern):
        parts.append([pattern[pos : m.start()]])
        lo, hi, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if lo.isdigit() and hi.isdigit():
            width = len(lo) if lo.startswith("0") else 0
            if int(lo) > int(hi) or step < 1:
                raise InputError(f"bad host range {pattern!r}: {lo} is above {hi}")
            parts.append([str(i).zfill(width) for i in range(int(lo), int(hi) + 1, step)])
        elif len(lo) == 1 and len(hi) == 1 and lo in string.ascii_letters and hi in string.ascii_letters:
            if lo > hi:
                raise InputError(f"bad host range {pattern!r}: {lo} is after {hi}")
            parts.append([chr(c) for c in range(ord(lo), ord(hi) + 1, step)])
        else:
            raise InputError(f"bad host range {pattern!r}: use [01:20] or [a:f]")
        pos = m.end()
    parts.append([pattern[pos:]])
    return ["".join(p) for p in itertools.product(*parts)]


def _literal(text: str):
    """An inline INI value as Ansible reads it: a Python literal when it is one, else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_ini(text: str, inv: Inventory, source: str) -> None:
    """Read an INI inventory into ``inv``."""
    section, kind = UNGROUPED, "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{source}:{lineno}"
        if line.startswith("["):
            m = re.fullmatch(r"\[([^\]:\s]+)(?::(vars|children|hosts))?\]", line)
            if not m:
                raise InputError(f"{where}: bad section header {line!r} (use [group], [group:vars] or "
                                 "[group:children])")  # fmt: skip
            section, kind = m.group(1), m.group(2) or "hosts"
            inv.group(section)
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as e:
            raise InputError(f"{where}: {e}") from None
        if not tokens:
            continue
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise InputError(f"{where}: expected key=value in [{section}:vars], got {line!r}")
            inv.group(section).vars[key.strip()] = value.strip()
        elif kind == "children":
            if len(tokens) != 1:
                raise InputError(f"{where}: one group name per line in [{section}:children]")
            inv.group(tokens[0])
            if tokens[0] not in inv.group(section).children:
                inv.group(section).children.append(tokens[0])
        else:
            variables = {}
            for tok in tokens[1:]:
                key, sep, value = tok.partition("=")
                if not sep or not key:
                    raise InputError(f"{where}: expected key=value after the host name, got {tok!r}")
                variables[key] = _literal(value)
            name, sep, port = tokens[0].rpartition(":")
            if sep and port.isdigit() and ":" not in name:
                variables.setdefault("ansible_port", int(port))
            else:
                name = tokens[0]
            for h in expand(name):
                inv.add_host(h, section, variables)


def parse_yaml(data, inv: Inventory, source: str) -> None:
    """Read a YAML inventory (already loaded) into ``inv``."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise InputError(f"{source}: a YAML inventory is a mapping of groups, not {type(data).__name__}")
    for name, body in data.items():
        _yaml_group(str(name), body, inv, source)


def _yaml_group(name: str, body, inv: Inventory, source: str) -> None:
    g = inv.group(name)
    if body is None:
        return
    if not isinstance(body, dict):
        raise InputError(f"{source}: group {name!r} must be a mapping (hosts, vars, children)")
    unknown = set(body) - {"hosts", "vars", "children"}
    if unknown:
        raise InputError(f"{source}: group {name!r} has unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                         " (a group holds hosts, vars and children)")  # fmt: skip
    for key in ("hosts", "vars", "children"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise InputError(f"{source}: {key} of group {name!r} must be a mapping")
    g.vars.update(body.get("vars") or {})
    for host, hvars in (body.get("hosts") or {}).items():
        if hvars is not None and not isinstance(hvars, dict):
            raise InputError(f"{source}: host {host!r} of group {name!r}: its variables must be a mapping")
        for h in expand(str(host)):
            inv.add_host(h, name, dict(hvars or {}))
    for child, cbody in (body.get("children") or {}).items():
        if str(child) not in g.children:
            g.children.append(str(child))
        _yaml_group(str(child), cbody, inv, source)


def _load_yaml(path: str):
    import yaml

    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read inventory {path}: {getattr(e, 'strerror', None) or e}") from None


def _parse_file(path: str, inv: Inventory) -> None:
    if path.endswith((".yml", ".yaml", ".json")):
        parse_yaml(_load_yaml(path), inv, path)
        return
    text = _read(path)
    lines = [ln.strip() for ln in text.splitlines()]
    first = next((ln for ln in lines if ln and not ln.startswith(("#", ";"))), "")
    if first.startswith("---") or re.fullmatch(r"[\w.-]+:", first):
        parse_yaml(_load_yaml(path), inv, path)
    else:
        parse_ini(text, inv, path)


def _vars_dir(base: str, kind: str) -> dict[str, dict]:
    """``group_vars/`` or ``host_vars/`` under ``base``: NAME[.yml|.yaml|.json] or a NAME/
    directory of such files (merged in name order)."""
    out: dict[str, dict] = {}
    top = os.path.join(base, kind)
    if not os.path.isdir(top):
        return out
    for entry in sorted(os.listdir(top)):
        if entry.startswith(".") or entry.endswith(_SKIP):
            continue
        path = os.path.join(top, entry)
        files = [os.path.join(path, f) for f in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
        name = entry
        if not os.path.isdir(path):
            name = next((entry[: -len(e)] for e in VAR_EXTS if e and entry.endswith(e)), entry)
        for f in files:
            if os.path.basename(f).startswith(".") or f.endswith(_SKIP) or os.path.isdir(f):
                continue
            data = _load_yaml(f)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise InputError(f"{f}: variables must be a mapping of names to values")
            out.setdefault(name, {}).update(data)
    return out


def load(path: str) -> Inventory:
    """The inventory at ``path``: one file, or a directory of inventory files (in name order;
    ``group_vars/`` and ``host_vars/`` are read beside the file or inside the directory).
    InputError naming the file and line for anything Ansible would refuse too."""
    if not os.path.exists(path):
        raise InputError(f"--inventory {path}: no such file or directory")
    inv = Inventory()
    inv.group(ALL)
    inv.group(UNGROUPED)
    if os.path.isdir(path):
        base = path
        for entry in sorted(os.listdir(path)):
            p = os.path.join(path, entry)
            if entry.startswith(".") or entry.endswith(_SKIP) or os.path.isdir(p):
                continue
            _parse_file(p, inv)
    else:
        base = os.path.dirname(path) or "."
        _parse_file(path, inv)
    inv.group_files = _vars_dir(base, "group_vars")
    inv.host_files = _vars_dir(base, "host_vars")
    for g in inv.groups.values():
        for child in g.children:
            if child == g.name or g.name in _descendants(inv, child):
                raise InputError(f"{path}: group {g.name!r} is its own descendant (through {child!r})")
    return inv


def _descendants(inv: Inventory, name: str) -> set[str]:
    out: set[str] = set()
    stack = list(inv.group(name).children)
    while stack:
        c = stack.pop()
        if c not in out:
            out.add(c)
            stack += inv.group(c).children
    return out
