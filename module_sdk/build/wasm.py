"""A small reader/writer for the core wasm binary format: just what the build needs (sections, types,
imports, exports, globals, memory, data).  The full validator is wasmtime's; this only reshapes modules."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\0asm\1\0\0\0"
VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
SEC_TYPE, SEC_IMPORT, SEC_FUNC, SEC_MEMORY, SEC_GLOBAL, SEC_EXPORT, SEC_START = 1, 2, 3, 5, 6, 7, 8
SEC_CODE, SEC_DATA, SEC_DATACOUNT = 10, 11, 12
KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL = 0, 1, 2, 3


class WasmFormatError(ValueError):
    """The bytes are not a core wasm module this tool can read."""


def read_uleb(b: bytes, p: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if p >= len(b):
            raise WasmFormatError("truncated LEB128")
        x = b[p]
        p += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return result, p


def uleb(v: int) -> bytes:
    out = bytearray()
    while True:
        x = v & 0x7F
        v >>= 7
        if v:
            out.append(x | 0x80)
        else:
            out.append(x)
            return bytes(out)


def sleb(v: int) -> bytes:
    out = bytearray()
    while True:
        x = v & 0x7F
        v >>= 7
        if (v == 0 and not x & 0x40) or (v == -1 and x & 0x40):
            out.append(x)
            return bytes(out)
        out.append(x | 0x80)


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def name(s: str) -> bytes:
    b = s.encode()
    return uleb(len(b)) + b


def read_name(b: bytes, p: int) -> tuple[str, int]:
    n, p = read_uleb(b, p)
    return b[p : p + n].decode("utf-8"), p + n


def sections(b: bytes) -> list[tuple[int, bytes]]:
    if b[:4] != MAGIC[:4]:
        if b[:1] == b"(" or b.lstrip()[:1] == b"(":
            raise WasmFormatError("this is WebAssembly text format (.wat), not a binary module")
        raise WasmFormatError("not a WebAssembly binary (bad magic)")
    if b[4:8] != MAGIC[4:]:
        if b[4:8] == b"\x0d\0\x01\0":
            raise WasmFormatError("this is a WebAssembly component, not a core module")
        raise WasmFormatError(f"unsupported wasm version {b[4:8].hex()}")
    p, out = 8, []
    while p < len(b):
        sid = b[p]
        n, q = read_uleb(b, p + 1)
        if q + n > len(b):
            raise WasmFormatError("truncated section")
        out.append((sid, b[q : q + n]))
        p = q + n
    return out


def emit(secs: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(MAGIC)
    for sid, body in secs:
        out += bytes([sid]) + uleb(len(body)) + body
    return bytes(out)


def _skip_limits(b: bytes, p: int) -> int:
    flags = b[p]
    _, p = read_uleb(b, p + 1)
    if flags & 1:
        _, p = read_uleb(b, p)
    return p


def skip_const_expr(b: bytes, p: int) -> int:
    while True:
        op = b[p]
        p += 1
        if op == 0x0B:
            return p
        if op in (0x41, 0x42, 0x23, 0xD2):  # i32.const/i64.const (LEB), global.get, ref.func
            _, p = read_uleb(b, p)
        elif op == 0x43:
            p += 4
        elif op == 0x44:
            p += 8
        elif op == 0xD0:
            p += 1
        elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
            pass
        else:
            raise WasmFormatError(f"unsupported constant expression opcode {op:#x}")


@dataclass(frozen=True)
class FuncType:
    params: tuple[str, ...]
    results: tuple[str, ...]

    def __str__(self) -> str:
        return f"({', '.join(self.params)}) -> ({', '.join(self.results)})"


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: int
    type: FuncType | None  # for function imports


@dataclass(frozen=True)
class Export:
    name: str
    kind: int
    index: int


@dataclass
class ModuleInfo:
    types: list[FuncType]
    imports: list[Import]
    func_types: list[int]  # type index of every function, imported ones first
    exports: list[Export]
    imported_globals: int

    def export_type(self, export: Export) -> FuncType | None:
        if export.kind != KIND_FUNC:
            return None
        return self.types[self.func_types[export.index]]


def parse_types(body: bytes) -> list[FuncType]:
    n, p = read_uleb(body, 0)
    out = []
    for _ in range(n):
        if body[p] != 0x60:
            raise WasmFormatError("non-function type in the type section (GC proposal?)")
        np_, p = read_uleb(body, p + 1)
        params = tuple(VALTYPES.get(body[p + i], hex(body[p + i])) for i in range(np_))
        p += np_
        nr, p = read_uleb(body, p)
        results = tuple(VALTYPES.get(body[p + i], hex(body[p + i])) for i in range(nr))
        p += nr
        out.append(FuncType(params, results))
    return out


def parse_exports(body: bytes) -> list[Export]:
    n, p = read_uleb(body, 0)
    out = []
    for _ in range(n):
        nm, p = read_name(body, p)
        kind = body[p]
        idx, p = read_uleb(body, p + 1)
        out.append(Export(nm, kind, idx))
    return out


def encode_exports(exports: list[Export]) -> bytes:
    return vec([name(e.name) + bytes([e.kind]) + uleb(e.index) for e in exports])


def module_info(b: bytes) -> ModuleInfo:
    types: list[FuncType] = []
    imports: list[Import] = []
    func_types: list[int] = []
    exports: list[Export] = []
    n_globals = 0
    for sid, body in sections(b):
        if sid == SEC_TYPE:
            types = parse_types(body)
        elif sid == SEC_IMPORT:
            n, p = read_uleb(body, 0)
            for _ in range(n):
                mod, p = read_name(body, p)
                nm, p = read_name(body, p)
                kind = body[p]
                p += 1
                ty = None
                if kind == KIND_FUNC:
                    ti, p = read_uleb(body, p)
                    func_types.append(ti)
                    ty = types[ti] if ti < len(types) else None
                elif kind == KIND_TABLE:
                    p = _skip_limits(body, p + 1)
                elif kind == KIND_MEMORY:
                    p = _skip_limits(body, p)
                elif kind == KIND_GLOBAL:
                    p += 2
                    n_globals += 1
                else:
                    raise WasmFormatError(f"unknown import kind {kind}")
                imports.append(Import(mod, nm, kind, ty))
        elif sid == SEC_FUNC:
            n, p = read_uleb(body, 0)
            for _ in range(n):
                ti, p = read_uleb(body, p)
                func_types.append(ti)
        elif sid == SEC_EXPORT:
            exports = parse_exports(body)
    return ModuleInfo(types, imports, func_types, exports, n_globals)


def retarget_import(b: bytes, old: tuple[str, str], new: tuple[str, str]) -> bytes:
    """`b` with function import `old` renamed to `new` (same signature, so no index or type changes)."""
    out, found = [], False
    for sid, body in sections(b):
        if sid == SEC_IMPORT:
            n, p = read_uleb(body, 0)
            entries = []
            for _ in range(n):
                mod, p = read_name(body, p)
                nm, p = read_name(body, p)
                start = p
                kind = body[p]
                p += 1
                if kind == KIND_FUNC:
                    _, p = read_uleb(body, p)
                elif kind == KIND_TABLE:
                    p = _skip_limits(body, p + 1)
                elif kind == KIND_MEMORY:
                    p = _skip_limits(body, p)
                elif kind == KIND_GLOBAL:
                    p += 2
                else:
                    raise WasmFormatError(f"unknown import kind {kind}")
                if (mod, nm) == old and kind == KIND_FUNC:
                    mod, nm, found = new[0], new[1], True
                entries.append(name(mod) + name(nm) + body[start:p])
            body = vec(entries)
        out.append((sid, body))
    if not found:
        raise WasmFormatError(f"no function import {old[0]}.{old[1]}")
    return emit(out)


def parse_globals(body: bytes) -> list[tuple[int, int, bytes]]:
    """(valtype, mutable, init expr bytes) for every defined global."""
    n, p = read_uleb(body, 0)
    out = []
    for _ in range(n):
        vt, mut = body[p], body[p + 1]
        q = skip_const_expr(body, p + 2)
        out.append((vt, mut, body[p + 2 : q]))
        p = q
    return out


def const_expr(valtype: int, value: int | float) -> bytes:
    if valtype == 0x7F:
        v = int(value) & 0xFFFFFFFF
        return b"\x41" + sleb(v - (1 << 32) if v >= 1 << 31 else v) + b"\x0b"
    if valtype == 0x7E:
        v = int(value) & 0xFFFFFFFFFFFFFFFF
        return b"\x42" + sleb(v - (1 << 64) if v >= 1 << 63 else v) + b"\x0b"
    if valtype == 0x7D:
        return b"\x43" + struct.pack("<f", value) + b"\x0b"
    if valtype == 0x7C:
        return b"\x44" + struct.pack("<d", value) + b"\x0b"
    raise WasmFormatError(f"cannot snapshot a global of type {valtype:#x}")
