"""Upstream's wording for JSON call arguments it refuses (`POST /v1/database/:name/call/:fn`).

Upstream reads the arguments with serde_json through serde_path_to_error and prints the anyhow chain, so an
error reads `<path>: invalid arguments for function f: <path>: <path>: <serde message> at line L column C`
(`.` is the root, `[0]` an argument by position, `text` one by name).  Our SATS-JSON reader decides what is
accepted; this module only re-describes a refusal the way serde_json would, from the raw text: the scanner
keeps each value's offsets so the error carries serde_json's position (after the offending token, or at a
`[`/`{` it did not enter).  Only the shapes whose wording was checked against the real server are described
(the argument list, primitives, strings, booleans, numbers, the end of input); for anything else
`describe` returns None and the caller keeps our reader's message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from spacetime_core.sats.types import (
    INT_RANGES,
    TAG_BOOL,
    TAG_F32,
    TAG_F64,
    TAG_I8,
    TAG_I16,
    TAG_I32,
    TAG_I64,
    TAG_REF,
    TAG_STRING,
    TAG_U8,
    TAG_U16,
    TAG_U32,
    TAG_U64,
)

_INT_NAMES = {TAG_I8: "i8", TAG_U8: "u8", TAG_I16: "i16", TAG_U16: "u16", TAG_I32: "i32", TAG_U32: "u32",
              TAG_I64: "i64", TAG_U64: "u64"}
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_WS = " \t\n\r"
_MAX_DEPTH = 128  # serde_json's recursion limit; deeper input is described by our reader instead


class _Unknown(Exception):
    """A case whose upstream wording we do not reproduce: keep our reader's message."""


class _Fail(Exception):
    def __init__(self, msg: str, pos: int, path: str | None = "."):
        super().__init__(msg)
        self.msg, self.pos, self.path = msg, pos, path


@dataclass
class _Node:
    kind: str  # seq | map | str | num | true | false | null
    start: int  # offset of the first character
    end: int = 0  # offset after the last character
    value: object = None
    items: list = field(default_factory=list)  # seq: nodes; map: (key, key end, value node)
    commas: list = field(default_factory=list)  # offsets of the commas between items
    eof: bool = False  # the input ended inside this seq / map


class _Scanner:
    def __init__(self, text: str):
        self.s = text

    def ws(self, i: int) -> int:
        while i < len(self.s) and self.s[i] in _WS:
            i += 1
        return i

    def value(self, i: int, depth: int = 0, top: bool = False) -> _Node:
        s = self.s
        if depth > _MAX_DEPTH:
            raise _Unknown
        i = self.ws(i)
        if i >= len(s):
            raise _Fail("EOF while parsing a value", i) if top else _Unknown
        c = s[i]
        if c == "[":
            return self.seq(i, depth, top)
        if c == "{":
            return self.map(i, depth, top)
        if c == '"':
            try:
                v, end = json.decoder.scanstring(s, i + 1)
            except json.JSONDecodeError:
                raise _Unknown from None
            return _Node("str", i, end, v)
        for word in ("true", "false", "null"):
            if s.startswith(word, i):
                return _Node(word, i, i + len(word))
        m = _NUMBER.match(s, i)
        if m:
            return _Node("num", i, m.end(), m.group(0))
        raise _Unknown

    def seq(self, i: int, depth: int, top: bool) -> _Node:
        node = _Node("seq", i)
        j = self.ws(i + 1)
        if j < len(self.s) and self.s[j] == "]":
            node.end = j + 1
            return node
        while True:
            if j >= len(self.s):
                if not top:
                    raise _Unknown
                node.eof, node.end = True, j
                return node
            node.items.append(self.value(j, depth + 1))
            j = self.ws(node.items[-1].end)
            if j < len(self.s) and self.s[j] == "]":
                node.end = j + 1
                return node
            if j < len(self.s) and self.s[j] == ",":
                node.commas.append(j)
                j = self.ws(j + 1)
                continue
            if j >= len(self.s) and top:
                node.eof, node.end = True, j
                return node
            raise _Unknown

    def map(self, i: int, depth: int, top: bool) -> _Node:
        node = _Node("map", i)
        j = self.ws(i + 1)
        if j < len(self.s) and self.s[j] == "}":
            node.end = j + 1
            return node
        while True:
            if j >= len(self.s) or self.s[j] != '"':
                raise _Unknown
            key = self.value(j, depth + 1)
            j = self.ws(key.end)
            if j >= len(self.s) or self.s[j] != ":":
                raise _Unknown
            val = self.value(j + 1, depth + 1)
            node.items.append((key.value, key.end, val))
            j = self.ws(val.end)
            if j < len(self.s) and self.s[j] == "}":
                node.end = j + 1
                return node
            if j < len(self.s) and self.s[j] == ",":
                node.commas.append(j)
                j = self.ws(j + 1)
                continue
            raise _Unknown


def _position(s: str, pos: int) -> str:
    """serde_json's `at line L column C`: C counts the bytes of the line before `pos`."""
    line_start = s.rfind("\n", 0, pos) + 1
    return f"at line {s.count(chr(10), 0, pos) + 1} column {len(s[line_start:pos].encode())}"


def _float_text(x: float) -> str:
    """Rust's `{:?}` of an f64 as serde prints it (`1.5`, `1.8446744073709552e19`)."""
    return repr(x).replace("e+", "e")


def _unexpected(node: _Node) -> str:
    if node.kind == "num":
        text = node.value
        if "." in text or "e" in text or "E" in text or not -(2**63) <= int(text) < 2**64:
            return f"floating point `{_float_text(float(text))}`"
        return f"integer `{int(text)}`"
    if node.kind == "str":
        if any(ord(ch) < 0x20 or ch in "\\\"" for ch in node.value):
            raise _Unknown  # Rust's Debug escapes: not reproduced
        return f'string "{node.value}"'
    return {"true": "boolean `true`", "false": "boolean `false`", "null": "null", "seq": "sequence",
            "map": "map"}[node.kind]


def _invalid_type(node: _Node, expected: str, path: str) -> _Fail:
    # serde_json consumes a scalar before complaining, but not a `[` or `{`
    pos = node.start if node.kind in ("seq", "map") else node.end
    return _Fail(f"invalid type: {_unexpected(node)}, expected {expected}", pos, path)


def _check(ty, node: _Node, path: str, typespace) -> None:
    while ty.tag == TAG_REF:
        if typespace is None:
            raise _Unknown
        ty = typespace.resolve(ty)
    tag = ty.tag
    if getattr(ty, "special", None) is not None:
        raise _Unknown
    if tag == TAG_STRING:
        if node.kind != "str":
            raise _invalid_type(node, "a string", path)
    elif tag == TAG_BOOL:
        if node.kind not in ("true", "false"):
            raise _invalid_type(node, "a boolean", path)
    elif tag in _INT_NAMES:
        name = _INT_NAMES[tag]
        if node.kind != "num" or _unexpected(node).startswith("floating"):
            raise _invalid_type(node, name, path)
        lo, hi = INT_RANGES[tag]
        v = int(node.value)
        if not lo <= v <= hi:
            raise _Fail(f"invalid value: integer `{v}`, expected {name}", node.end, path)
    elif tag in (TAG_F32, TAG_F64):
        if node.kind != "num":
            raise _invalid_type(node, "f32" if tag == TAG_F32 else "f64", path)
    else:
        raise _Unknown


def _check_args(params, top: _Node, fn: str, typespace) -> None:
    elements = params.elements
    n = len(elements)
    if top.kind == "seq":
        for k, (_, ty) in enumerate(elements):
            if k >= len(top.items):
                if top.eof:
                    raise _Fail("EOF while parsing a list", top.end)
                raise _Fail(f"invalid length {k}, expected reducer args for {fn} with {n} elements", top.end)
            _check(ty, top.items[k], f"[{k}]", typespace)
        if top.eof:
            raise _Fail("EOF while parsing a list", top.end)
        if len(top.items) > n:  # the comma was eaten: serde_json looks at the next value
            raise _Fail("trailing characters", top.items[n].start + 1)
        return
    if top.kind == "map":
        names = [name for name, _ in elements]
        if n != 1 or top.eof:  # the list of expected names for several was not checked against the real server
            raise _Unknown
        for idx, (key, key_end, val) in enumerate(top.items[:n]):
            if key not in names:
                raise _Fail(f"unknown reducer argument `{key}`, expected `{names[0]}`", key_end, key)
            _check(elements[names.index(key)][1], val, key, typespace)
            if idx == n - 1 and len(top.items) > n:
                raise _Fail("trailing comma", top.commas[idx] + 1)
        if len(top.items) < n:
            raise _Fail(f"missing reducer argument `{names[len(top.items)]}`", top.end)
        return
    raise _invalid_type(top, f"a {fn} tuple", ".")


def describe(text: str, params, fn: str, typespace=None) -> str | None:
    """The real server's message (after `invalid arguments for reducer <fn>: `) for arguments `text` that our
    reader refused, or None when this case's wording is not reproduced."""
    try:
        try:
            scanner = _Scanner(text)
            top = scanner.value(0, top=True)
            rest = scanner.ws(top.end)
            _check_args(params, top, fn, typespace)
            if rest < len(text):  # serde's `de.end()`: after the value, outside the path tracking
                raise _Fail("trailing characters", rest + 1, None)
            return None
        except _Fail as f:
            msg = f"{f.msg} {_position(text, f.pos)}"
            if f.path is None:
                return f"{msg}: invalid arguments for function {fn}: {msg}: {msg}"
            return f"{f.path}: invalid arguments for function {fn}: {f.path}: {f.path}: {msg}"
    except (_Unknown, RecursionError, ValueError):
        return None
