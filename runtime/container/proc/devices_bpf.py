"""Device rules (cgroup v1 `devices.allow` lines after a "deny all") -> an eBPF program of type
BPF_PROG_TYPE_CGROUP_DEVICE, the cgroup v2 device controller, as runc's devicefilter builds
it: read the access type, major and minor from struct bpf_cgroup_dev_ctx, then one block per
rule that returns 1 (allow) when type, access (the requested bits all allowed), major and
minor match; 0 (deny) when none does. berthd compiles a container's list
(runtime/container/devices.py); the forkserver compiles and loads Docker's default list once
at its start, so monitors inherit it ready to attach (runtime/container/proc/devices.py)."""

import binascii
import struct

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Dict, List, Tuple  # noqa: F401

# linux/bpf.h
DEV_BLOCK, DEV_CHAR = 1, 2
ACC = {"m": 1, "r": 2, "w": 4}
LDX_W = 0x61          # dst = *(u32 *)(src + off)
AND_K = 0x57          # dst &= imm (64-bit ALU)
RSH_K = 0x77          # dst >>= imm
MOV_K = 0xB7          # dst = imm
MOV_X = 0xBF          # dst = src
JNE_K = 0x55          # if dst != imm goto +off
JNE_X = 0x5D          # if dst != src goto +off
EXIT = 0x95

_cache = {}  # type: Dict[Tuple[str, ...], str]


def _insn(code, dst=0, src=0, off=0, imm=0):
    # type: (int, int, int, int, int) -> bytes
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def _block(rule):
    # type: (str) -> List[bytes]
    """Instructions for one rule; a failed test jumps past the block's end (filled in here)."""
    kind, numbers, access = rule.split()
    major, minor = numbers.split(":")
    tests = []  # type: List[Tuple[int, int, int, int]]  (code, dst, src, imm) of a "jump if not"
    if kind != "a":
        tests.append((JNE_K, 2, 0, DEV_BLOCK if kind == "b" else DEV_CHAR))
    bits = sum(ACC[c] for c in access)
    if bits != 7:  # requested access must be a subset: (r3 & bits) == r3
        pre_and = [_insn(MOV_X, 1, 3), _insn(AND_K, 1, imm=bits)]
        tests.append((JNE_X, 1, 3, 0))
    else:
        pre_and = []
    if major != "*":
        tests.append((JNE_K, 4, 0, int(major)))
    if minor != "*":
        tests.append((JNE_K, 5, 0, int(minor)))
    # layout: [type test] [mov, and, access test] [major test] [minor test] r0 = 1; exit
    body = []  # type: List[object]
    for t in tests:
        if t[0] == JNE_X:
            body.extend(pre_and)
        body.append(t)
    body.extend([_insn(MOV_K, 0, imm=1), _insn(EXIT)])
    out = []
    for i, item in enumerate(body):
        if isinstance(item, tuple):
            code, dst, src, imm = item
            out.append(_insn(code, dst, src, len(body) - i - 1, imm))
        else:
            out.append(item)  # type: ignore
    return out


def compile_rules(allowed):
    # type: (Tuple[str, ...]) -> bytes
    """The program for an allow list (None is not for here: no program, no restriction)."""
    prog = [
        _insn(LDX_W, 2, 1, 0), _insn(AND_K, 2, imm=0xFFFF),  # r2 = type
        _insn(LDX_W, 3, 1, 0), _insn(RSH_K, 3, imm=16),      # r3 = access
        _insn(LDX_W, 4, 1, 4),                                # r4 = major
        _insn(LDX_W, 5, 1, 8),                                # r5 = minor
    ]
    for rule in allowed:
        prog.extend(_block(rule))
    prog.extend([_insn(MOV_K, 0, imm=0), _insn(EXIT)])
    return b"".join(prog)


def program_b64(allowed):
    # type: (Tuple[str, ...]) -> str
    """compile_rules as base64 for the run spec, cached per rule list."""
    hit = _cache.get(allowed)
    if hit is None:
        hit = binascii.b2a_base64(compile_rules(allowed)).decode().strip()
        if len(_cache) > 256:
            _cache.clear()
        _cache[allowed] = hit
    return hit
