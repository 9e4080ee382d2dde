"""SATN: how SATS values and types read on a terminal, as the `spacetime` CLI prints them (`spacetime sql`'s
psql cells and the SATS type formatter).

Values: strings `"text"`, bytes and identities `0x<hex>`, timestamps RFC 3339 (`1970-01-01T00:00:00+00:00`),
durations `+1.500000`, uuids quoted, products `(name = value, ...)` (unnamed fields `col_<i>`), sums and options
by variant name `(Variant = payload)` with unit payloads `()`, arrays `[a, b]`.
Types: `U64`, `String`, `Array<T>`, products `(name: T, ...)`, sums `(A: () | B: U64)`; where the spacetime CLI
would print a typespace reference (`&4`) or the product that encodes a special type, this prints the name
(`LobbySummary`, `Identity`, `Option<String>`).

Host-side presentation only (CLI verbs, test helpers); modules never import it.
"""

from __future__ import annotations

import math
from typing import Any

from .satsjson import _product_fields, _sum_parts
from .types import TAG_ARRAY, TAG_BOOL, TAG_F32, TAG_F64, TAG_PRODUCT, TAG_REF, TAG_STRING, TAG_SUM, AlgebraicType
from .values import Err, Ok, Some

_SPECIAL_NAMES = {"identity": "Identity", "connection_id": "ConnectionId", "timestamp": "Timestamp",
                  "time_duration": "TimeDuration", "uuid": "Uuid", "schedule_at": "ScheduleAt"}


def _resolve(t: AlgebraicType, ts: Any) -> AlgebraicType:
    while t.tag == TAG_REF:
        if ts is None:
            raise ValueError(f"type {t!r} needs a typespace")
        t = ts.resolve(t) if hasattr(ts, "resolve") else ts[t.index]
    return t


def format_value(t: AlgebraicType, v: Any, ts: Any = None) -> str:
    """`v` (a Python value of SATS type `t`, as spacetime_core.sats decodes it) the way `spacetime sql` prints it."""
    t = _resolve(t, ts)
    s = t.special
    if s in ("identity", "connection_id"):
        return f"0x{v.to_hex()}"
    if s == "timestamp":
        return _rfc3339(v)
    if s in ("time_duration", "uuid"):
        return str(v) if s == "time_duration" else f'"{v}"'
    if s == "unit":
        return "()"
    if s == "option":
        if v is None:
            return "(none = ())"
        return f"(some = {format_value(t.elements[0][1], v.value if isinstance(v, Some) else v, ts)})"
    if s == "result":
        i = 1 if isinstance(v, Err) else 0
        payload = v.value if isinstance(v, (Ok, Err)) else v
        return f"({t.elements[i][0]} = {format_value(t.elements[i][1], payload, ts)})"
    tag = t.tag
    if tag == TAG_PRODUCT:
        fields = _product_fields(t, v)
        return "(" + ", ".join(f"{n if n is not None else f'col_{i}'} = {format_value(et, x, ts)}"
                               for i, ((n, et), x) in enumerate(zip(t.elements, fields))) + ")"
    if tag == TAG_SUM:
        i, payload = _sum_parts(t, v)
        n, et = t.elements[i]
        return f"({n if n is not None else f'col_{i}'} = {format_value(et, payload, ts)})"
    if tag == TAG_ARRAY:
        if t.elem.tag == 7:  # Array<U8>
            return f"0x{bytes(v).hex()}"
        return "[" + ", ".join(format_value(t.elem, x, ts) for x in v) + "]"
    if tag == TAG_STRING:
        return f'"{v}"'
    if tag == TAG_BOOL:
        return "true" if v else "false"
    if tag in (TAG_F32, TAG_F64):
        return _float(float(v))
    return str(int(v))


def format_type(t: AlgebraicType, ts: Any = None, names: dict[int, str] | None = None) -> str:
    """`t` as the SATS type formatter prints it, with named typespace entries and special types by name."""
    if t.tag == TAG_REF:
        if names and t.index in names:
            return names[t.index]
        return f"&{t.index}"
    s = t.special
    if s in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[s]
    if s == "unit":
        return "()"
    if s == "option":
        return f"Option<{format_type(t.elements[0][1], ts, names)}>"
    if s == "result":
        return f"Result<{format_type(t.elements[0][1], ts, names)}, {format_type(t.elements[1][1], ts, names)}>"
    tag = t.tag
    if tag == TAG_PRODUCT:
        return "(" + ", ".join(f"{n if n is not None else i}: {format_type(et, ts, names)}"
                               for i, (n, et) in enumerate(t.elements)) + ")"
    if tag == TAG_SUM:
        if not t.elements:
            return "(|)"
        return "(" + " | ".join((f"{n}: " if n is not None else "") + format_type(et, ts, names)
                                for n, et in t.elements) + ")"
    if tag == TAG_ARRAY:
        return f"Array<{format_type(t.elem, ts, names)}>"
    return repr(t)  # primitives: U64, String, Bool, ...


def _rfc3339(ts: Any) -> str:
    """chrono's `to_rfc3339` (seconds format AutoSi): no fraction, milliseconds or microseconds, as needed."""
    text = ts.isoformat()  # ...THH:MM:SS.ffffff+00:00
    head, _, rest = text.partition(".")
    us = rest[:6]
    if us == "000000":
        return f"{head}+00:00"
    return f"{head}.{us[:3] if us.endswith('000') else us}+00:00"


def _float(x: float) -> str:
    """Rust's `Display` for floats: `1` for 1.0, `1.5`, `inf`, `-inf`, `NaN`, no exponent."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e16:
        return str(int(x)) if x != 0 or math.copysign(1, x) > 0 else "-0"
    text = repr(x)
    if "e" in text:
        text = f"{x:.17f}".rstrip("0").rstrip(".")
    return text
