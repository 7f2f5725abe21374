"""A seccomp profile in dockerd's JSON schema -> a classic BPF program (struct sock_filter[]),
as libseccomp builds it for runc, for one native architecture and the capabilities the process
will have.

Layout: check the architecture word of seccomp_data (a foreign one, and on x86_64 the x32 ABI,
bit 30 of the number, are killed); then per architecture a binary search over ranges of
syscall numbers that share an action, down to short chains of returns; a syscall with
argument rules has its own block, which tests them in order and returns the first matching
rule's action, else the default action. Small programs matter: the kernel checks and JITs
the filter at every install, ~1 ms per thousand instructions here.

Rule selection follows moby's profiles/seccomp: an entry applies when its `includes` (caps: all
held; arches: the native one listed; minKernel) hold and its `excludes` do not; within an entry,
argument conditions on distinct indexes are ANDed, and when an index repeats each condition is
a rule of its own (runc's matchCall). Names this architecture lacks are skipped.
"""

import os
import re
import struct

from runtime import TYPE_CHECKING
from runtime.container.seccomp.syscalls import TABLES

if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple  # noqa: F401

# linux/audit.h
AUDIT_ARCH = {"x86_64": 0xC000003E, "i386": 0x40000003, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
# the profile's arch names (SCMP_ARCH_*) and Go's (includes.arches) for ours
SCMP_NAMES = {"x86_64": "SCMP_ARCH_X86_64", "i386": "SCMP_ARCH_X86", "aarch64": "SCMP_ARCH_AARCH64"}
GO_NAMES = {"x86_64": "amd64", "aarch64": "arm64"}
SUB_ARCHES = {"x86_64": ("i386",), "aarch64": ()}  # arm (32-bit) on aarch64: no table, killed

RET_KILL_THREAD = 0x00000000
RET_KILL_PROCESS = 0x80000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
EPERM = 1

# BPF opcodes (linux/filter.h)
LD_ABS_W = 0x20
ALU_AND_K = 0x54
JA = 0x05
JEQ = 0x15
JGT = 0x25
JGE = 0x35
RET_K = 0x06
MAX_INSNS = 4096

OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16


class ProfileError(ValueError):
    """The profile cannot be compiled; the message says what in it is wrong."""


def native_arch():
    # type: () -> str
    """This machine's architecture as our tables name it; ProfileError if we have none."""
    m = os.uname().machine
    m = {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)
    if m not in GO_NAMES:
        raise ProfileError("seccomp: architecture %s is not supported (x86_64 and aarch64 are)" % m)
    return m


def kernel_version():
    # type: () -> Tuple[int, ...]
    """(major, minor) of the running kernel."""
    nums = re.findall(r"\d+", os.uname()[2])[:2]
    return tuple(int(n) for n in nums) or (0, 0)


def action_value(action, errno_ret, default_errno=EPERM):
    # type: (str, Optional[int], int) -> int
    """SCMP_ACT_* -> the filter's return value."""
    if action == "SCMP_ACT_ALLOW":
        return RET_ALLOW
    if action == "SCMP_ACT_ERRNO":
        return RET_ERRNO | ((default_errno if errno_ret is None else int(errno_ret)) & 0xFFFF)
    if action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return RET_KILL_THREAD
    if action == "SCMP_ACT_KILL_PROCESS":
        return RET_KILL_PROCESS
    if action == "SCMP_ACT_TRAP":
        return RET_TRAP
    if action == "SCMP_ACT_TRACE":
        return RET_TRACE | ((int(errno_ret or 0)) & 0xFFFF)
    if action == "SCMP_ACT_LOG":
        return RET_LOG
    raise ProfileError("seccomp profile: action %r is not supported" % (action,))


# ---------------------------------------------------------------- rule selection

def _applies(entry, caps, go_arch, kernel):
    # type: (dict, set, str, tuple) -> bool
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if inc.get("minKernel"):
        want = tuple(int(n) for n in re.findall(r"\d+", str(inc["minKernel"]))[:2])
        if kernel < want:
            return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    if exc.get("arches") and go_arch in exc["arches"]:
        return False
    return True


def _rules_of(entry):
    # type: (dict) -> List[List[dict]]
    """The entry's argument conditions as a list of rules (each an ANDed list)."""
    args = entry.get("args") or []
    for a in args:
        if not isinstance(a, dict) or "index" not in a or "op" not in a:
            raise ProfileError("seccomp profile: argument condition %r needs index, op and value" % (a,))
        if not 0 <= int(a["index"]) < 6:
            raise ProfileError("seccomp profile: argument index %r is not 0-5" % (a["index"],))
    indexes = [int(a["index"]) for a in args]
    if len(set(indexes)) < len(indexes):
        return [[a] for a in args]
    return [list(args)]


def syscall_rules(profile, arch, caps, kernel=None):
    # type: (dict, str, set, Optional[tuple]) -> Dict[int, List[Tuple[List[dict], int]]]
    """number -> [(conditions, return value)], rules with conditions before unconditional ones."""
    table = TABLES[arch]
    go_arch = GO_NAMES.get(arch) or GO_NAMES[native_arch()]
    kernel = kernel or kernel_version()
    out = {}  # type: Dict[int, List[Tuple[List[dict], int]]]
    entries = profile.get("syscalls") or []
    if not isinstance(entries, list):
        raise ProfileError("seccomp profile: syscalls must be a list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise ProfileError("seccomp profile: syscall entry %r is not an object" % (entry,))
        if not _applies(entry, caps, go_arch, kernel):
            continue
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        ret = action_value(entry.get("action", ""), entry.get("errnoRet"))
        for rule in _rules_of(entry):
            for name in names:
                if name in table:
                    out.setdefault(table[name], []).append((rule, ret))
    for nr in out:
        out[nr].sort(key=lambda r: not r[0])  # stable: conditional rules first
    return out


# ---------------------------------------------------------------- assembler

class _Asm(object):
    """Instructions with symbolic jump targets, resolved by assemble()."""

    def __init__(self):
        # type: () -> None
        self.code = []  # type: List[list]
        self.labels = {}  # type: Dict[str, int]
        self.count = 0

    def new_label(self):
        # type: () -> str
        self.count += 1
        return "L%d" % self.count

    def mark(self, label):
        # type: (str) -> None
        self.labels[label] = len(self.code)

    def op(self, code, k=0, jt=None, jf=None):
        # type: (int, int, object, object) -> None
        """jt/jf: None (next instruction) or a label; JA takes its target as k (a label)."""
        self.code.append([code, jt, jf, k])

    def assemble(self):
        # type: () -> bytes
        if len(self.code) > MAX_INSNS:
            raise ProfileError("seccomp profile: the program needs %d instructions, more than the "
                               "kernel's %d" % (len(self.code), MAX_INSNS))
        out = []
        for i, (code, jt, jf, k) in enumerate(self.code):
            if code == JA:
                out.append(struct.pack("=HBBI", code, 0, 0, self._offset(i, k, 0xFFFFFFFF)))
            else:
                out.append(struct.pack("=HBBI", code, self._offset(i, jt, 255), self._offset(i, jf, 255),
                                       k & 0xFFFFFFFF))
        return b"".join(out)

    def _offset(self, i, target, most):
        # type: (int, object, int) -> int
        if target is None:
            return 0
        off = self.labels[str(target)] - i - 1
        if not 0 <= off <= most:
            raise AssertionError("seccomp: jump out of range (%d)" % off)
        return off


def _condition(asm, cond, fail):
    # type: (_Asm, dict, str) -> None
    """Code that falls through when the 64-bit argument meets cond, else jumps to fail."""
    index, op = int(cond["index"]), cond["op"]
    value = int(cond.get("value") or 0) & 0xFFFFFFFFFFFFFFFF
    hi_off, lo_off = OFF_ARGS + 8 * index + 4, OFF_ARGS + 8 * index  # little endian
    v_hi, v_lo = value >> 32, value & 0xFFFFFFFF
    ok = asm.new_label()
    if op == "SCMP_CMP_EQ":
        asm.op(LD_ABS_W, hi_off)
        asm.op(JEQ, v_hi, None, fail)
        asm.op(LD_ABS_W, lo_off)
        asm.op(JEQ, v_lo, None, fail)
    elif op == "SCMP_CMP_NE":
        asm.op(LD_ABS_W, hi_off)
        asm.op(JEQ, v_hi, None, ok)
        asm.op(LD_ABS_W, lo_off)
        asm.op(JEQ, v_lo, fail, None)
    elif op == "SCMP_CMP_MASKED_EQ":  # value is the mask, valueTwo what the masked arg must be
        want = int(cond.get("valueTwo") or 0) & 0xFFFFFFFFFFFFFFFF
        asm.op(LD_ABS_W, hi_off)
        asm.op(ALU_AND_K, v_hi)
        asm.op(JEQ, want >> 32, None, fail)
        asm.op(LD_ABS_W, lo_off)
        asm.op(ALU_AND_K, v_lo)
        asm.op(JEQ, want & 0xFFFFFFFF, None, fail)
    elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        asm.op(LD_ABS_W, hi_off)
        asm.op(JGT, v_hi, ok, None)
        asm.op(JEQ, v_hi, None, fail)
        asm.op(LD_ABS_W, lo_off)
        asm.op(JGT if op == "SCMP_CMP_GT" else JGE, v_lo, None, fail)
    elif op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        asm.op(LD_ABS_W, hi_off)
        asm.op(JGT, v_hi, fail, None)
        asm.op(JEQ, v_hi, None, ok)
        asm.op(LD_ABS_W, lo_off)
        asm.op(JGE if op == "SCMP_CMP_LT" else JGT, v_lo, fail, None)
    else:
        raise ProfileError("seccomp profile: argument operator %r is not supported" % (op,))
    asm.mark(ok)


def _syscall_block(asm, rules, default):
    # type: (_Asm, list, int) -> None
    for conds, ret in rules:
        if not conds:
            asm.op(RET_K, ret)
            return
        nxt = asm.new_label()
        for c in conds:
            _condition(asm, c, nxt)
        asm.op(RET_K, ret)
        asm.mark(nxt)
    asm.op(RET_K, default)


def intervals(items, default):
    # type: (list, int) -> List[Tuple[int, object]]
    """Sorted [(nr, rules)] -> [(first number, value)] covering 0..2**32-1: value is a return
    value for every number up to the next interval's first, or the rules of that one syscall.
    Neighbouring numbers with the same unconditional action share one interval, which brings
    dockerd's ~370 names down to a few dozen ranges per architecture."""
    out = []  # type: List[Tuple[int, object]]

    def add(first, value):
        # type: (int, object) -> None
        if out and not isinstance(value, list) and not isinstance(out[-1][1], list) and out[-1][1] == value:
            return
        out.append((first, value))

    end = 0
    for nr, rules in items:
        if nr > end:
            add(end, default)
        add(nr, rules[0][1] if not rules[0][0] else list(rules))  # (conditional rules sort first)
        end = nr + 1
    add(end, default)
    return out


def _dispatch(asm, ivs, default):
    # type: (_Asm, list, int) -> None
    """A holds the syscall number, known to be >= ivs[0]'s first and below the next interval
    after ivs; a binary search down to one interval, or a short chain of constant returns.
    Every path returns."""
    if len(ivs) <= 8 and not any(isinstance(v, list) for _, v in ivs):
        labels = [asm.new_label() for _ in ivs]
        for k in range(len(ivs) - 1, 0, -1):
            asm.op(JGE, ivs[k][0], labels[k], None)
        for k, (_, value) in enumerate(ivs):
            asm.mark(labels[k])
            asm.op(RET_K, value)
        return
    if len(ivs) == 1:
        value = ivs[0][1]
        if isinstance(value, list):
            _syscall_block(asm, value, default)
        else:
            asm.op(RET_K, value)
        return
    mid = len(ivs) // 2
    left, right = asm.new_label(), asm.new_label()
    asm.op(JGE, ivs[mid][0], None, left)
    asm.op(JA, right)
    asm.mark(left)
    _dispatch(asm, ivs[:mid], default)
    asm.mark(right)
    _dispatch(asm, ivs[mid:], default)


def compile_profile(profile, caps, arch=None, kernel=None):
    # type: (dict, set, Optional[str], Optional[tuple]) -> bytes
    """The sock_filter array for profile on arch (default: this machine) for a process holding
    caps (names like "CAP_SYS_ADMIN"). ProfileError for what cannot be compiled."""
    if not isinstance(profile, dict):
        raise ProfileError("seccomp profile: the top level must be a JSON object")
    arch = arch or native_arch()
    default = action_value(profile.get("defaultAction") or "", None,
                           int(profile.get("defaultErrnoRet") or EPERM))
    arches = [arch] + [a for a in SUB_ARCHES.get(arch, ()) if _lists_arch(profile, arch, a)]
    asm = _Asm()
    asm.op(LD_ABS_W, OFF_ARCH)
    for a in arches:
        other, here = asm.new_label(), asm.new_label()
        asm.op(JEQ, AUDIT_ARCH[a], here, None)
        asm.op(JA, other)
        asm.mark(here)
        asm.op(LD_ABS_W, OFF_NR)
        if a == "x86_64":
            body = asm.new_label()
            asm.op(JGE, X32_SYSCALL_BIT, None, body)
            asm.op(RET_K, RET_KILL_PROCESS)
            asm.mark(body)
        rules = syscall_rules(profile, a, caps, kernel)
        _dispatch(asm, intervals(sorted(rules.items()), default), default)
        asm.mark(other)
        if a != arches[-1]:
            asm.op(LD_ABS_W, OFF_ARCH)
    asm.op(RET_K, RET_KILL_PROCESS)
    return asm.assemble()


def _lists_arch(profile, native, sub):
    # type: (dict, str, str) -> bool
    """Whether the profile's archMap (or older `architectures`) includes sub beside native."""
    want = SCMP_NAMES[sub]
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == SCMP_NAMES[native] and want in (entry.get("subArchitectures") or []):
            return True
    return want in (profile.get("architectures") or [])
