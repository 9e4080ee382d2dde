"""Reads and validates the RawModuleDef a module returns from `__describe_module__` (V10, V9).

The result is the host's view of a module: canonical names resolved (shared/spec/module-def.md §5),
index/constraint/sequence names generated as the server does, ReducerIds = positions.  Invalid
definitions raise `ModuleDefError` with a message a module author can act on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from module_sdk import names as naming
from module_sdk.sats import (
    ProductType,
    RefType,
    Typespace,
    decode_product_type,
    decode_type,
    decode_typespace,
)

LIFECYCLE = {0: "init", 1: "client_connected", 2: "client_disconnected"}
ALGOS = {0: "btree", 1: "hash", 2: "direct"}


class ModuleDefError(ValueError):
    """The module definition is malformed or violates a SpacetimeDB rule."""


@dataclass
class IndexDef:
    name: str  # canonical (generated) name
    source_name: str
    accessor: str | None
    algo: str
    columns: tuple[int, ...]


@dataclass
class SequenceDef:
    column: int
    start: int | None
    min_value: int | None
    max_value: int | None
    increment: int


@dataclass
class ScheduleDef:
    reducer: str  # canonical function name
    at_column: int


@dataclass
class TableDef:
    name: str  # canonical
    source_name: str
    row_ref: int
    row_type: ProductType
    column_names: tuple[str, ...]  # canonical column names
    primary_key: int | None
    indexes: list[IndexDef]
    unique: list[tuple[int, ...]]
    sequences: list[SequenceDef]
    public: bool
    is_event: bool = False
    default_values: dict[int, bytes] = field(default_factory=dict)
    schedule: ScheduleDef | None = None


@dataclass
class ReducerDef:
    id: int
    name: str  # canonical
    source_name: str
    params: ProductType
    client_callable: bool
    lifecycle: str | None = None


@dataclass
class FunctionDef:
    """A procedure or view (kept for describe/codegen; calling them is the instance's job)."""

    kind: str
    name: str
    source_name: str
    params: ProductType
    return_type: object
    index: int = 0
    is_anonymous: bool = False
    public: bool = True


@dataclass
class TypeDef:
    scope: tuple[str, ...]
    name: str
    ref: int


@dataclass
class ModuleDef:
    version: int
    typespace: Typespace
    tables: list[TableDef]
    reducers: list[ReducerDef]
    types: list[TypeDef] = field(default_factory=list)
    procedures: list[FunctionDef] = field(default_factory=list)
    views: list[FunctionDef] = field(default_factory=list)
    row_level_security: list[str] = field(default_factory=list)
    raw: bytes = b""

    def table(self, name: str) -> TableDef:
        for t in self.tables:
            if name in (t.name, t.source_name):
                return t
        raise KeyError(name)

    def reducer(self, name: str) -> ReducerDef:
        for r in self.reducers:
            if name in (r.name, r.source_name):
                return r
        raise KeyError(name)

    def lifecycle(self, event: str) -> ReducerDef | None:
        return next((r for r in self.reducers if r.lifecycle == event), None)


class _Reader:
    __slots__ = ("b", "p")

    def __init__(self, b: bytes):
        self.b = b
        self.p = 0

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.b):
            raise ModuleDefError(f"module definition truncated at byte {self.p}")
        out = self.b[self.p : self.p + n]
        self.p += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def i128(self) -> int:
        return int.from_bytes(self.take(16), "little", signed=True)

    def bool(self) -> bool:
        v = self.u8()
        if v > 1:
            raise ModuleDefError(f"invalid bool byte {v} at {self.p - 1}")
        return v == 1

    def str(self) -> str:
        n = self.u32()
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise ModuleDefError(f"invalid UTF-8 in a name at byte {self.p - n}") from None

    def bytes(self) -> bytes:
        return self.take(self.u32())

    def option(self, f):
        tag = self.u8()
        if tag == 0:
            return f()
        if tag == 1:
            return None
        raise ModuleDefError(f"invalid Option tag {tag} at byte {self.p - 1}")

    def vec(self, f) -> list:
        return [f() for _ in range(self.u32())]

    def collist(self) -> tuple[int, ...]:
        return tuple(self.vec(self.u16))

    def sum_tag(self, what: str, n: int) -> int:
        tag = self.u8()
        if tag >= n:
            raise ModuleDefError(f"unknown {what} tag {tag} at byte {self.p - 1}")
        return tag

    def _wrap(self, fn):
        try:
            value, self.p = fn(self.b, self.p)
        except ValueError as e:
            raise ModuleDefError(f"bad type at byte {self.p}: {e}") from None
        return value

    def type(self):
        return self._wrap(decode_type)

    def product_type(self) -> ProductType:
        return self._wrap(decode_product_type)

    def typespace(self) -> Typespace:
        return self._wrap(decode_typespace)


def decode_module_def(data: bytes) -> ModuleDef:
    """Decode and validate a RawModuleDef (V10 or V9); V8 is refused with a clear message."""
    r = _Reader(bytes(data))
    if not data:
        raise ModuleDefError("__describe_module__ wrote nothing")
    version = r.u8()
    if version == 2:
        mdef = _read_v10(r)
    elif version == 1:
        mdef = _read_v9(r)
    elif version == 0:
        raise ModuleDefError("RawModuleDef V8 is not supported by this host; rebuild the module with a 2.x SDK")
    else:
        raise ModuleDefError(f"unknown RawModuleDef version tag {version}")
    mdef.raw = bytes(data)
    _validate(mdef)
    return mdef


# ---------------------------------------------------------------- V10

def _read_v10(r: _Reader) -> ModuleDef:
    sections: dict[int, object] = {}
    for _ in range(r.u32()):
        tag = r.sum_tag("RawModuleDefV10Section", 15)
        value = _V10_SECTIONS[tag](r)
        sections.setdefault(tag, value)  # the validator reads only the first section of each kind
    typespace = sections.get(0) or Typespace([])
    policy_snake = sections.get(9, 1) == 1
    explicit = sections.get(10, {})

    def canon(kind: str, source: str) -> str:
        if (kind, source) in explicit:
            return explicit[(kind, source)]
        return naming.canonical_snake(source) if policy_snake else source

    tables = []
    for raw in sections.get(2, []):
        tables.append(_table(raw, typespace, canon("table", raw["source_name"]), policy_snake, explicit))
    schedules = {s["table_name"]: s for s in sections.get(6, [])}
    for t in tables:
        s = schedules.get(t.source_name)
        if s:
            t.schedule = ScheduleDef(canon("function", s["function_name"]), s["schedule_at_col"])
    lifecycle = {lc["function_name"]: LIFECYCLE[lc["spec"]] for lc in sections.get(7, [])}
    reducers = []
    for i, raw in enumerate(sections.get(3, [])):
        lc = lifecycle.get(raw["source_name"])
        scheduled = any(t.schedule and t.schedule.reducer == canon("function", raw["source_name"]) for t in tables)
        reducers.append(
            ReducerDef(i, canon("function", raw["source_name"]), raw["source_name"], raw["params"],
                       raw["visibility"] == 1 and lc is None and not scheduled, lc)
        )
    missing = set(lifecycle) - {r.source_name for r in reducers}
    if missing:
        raise ModuleDefError(f"lifecycle reducer(s) {sorted(missing)} are not in the Reducers section")
    procedures = [FunctionDef("procedure", canon("function", p["source_name"]), p["source_name"], p["params"],
                              p["return_type"], public=p["visibility"] == 1) for p in sections.get(4, [])]
    views = [FunctionDef("view", canon("function", v["source_name"]), v["source_name"], v["params"],
                         v["return_type"], v["index"], v["is_anonymous"], v["is_public"]) for v in sections.get(5, [])]
    types = [TypeDef(tuple(t["scope"]), t["name"], t["ty"]) for t in sections.get(1, [])]
    return ModuleDef(10, typespace, tables, reducers, types, procedures, views, list(sections.get(8, [])))


def _table(raw: dict, ts: Typespace, name: str, policy_snake: bool, explicit: dict) -> TableDef:
    ref = raw["product_type_ref"]
    if ref >= len(ts.types):
        raise ModuleDefError(f"table {raw['source_name']!r}: product_type_ref {ref} is outside the typespace")
    row = ts.types[ref]
    if not isinstance(row, ProductType):
        raise ModuleDefError(f"table {raw['source_name']!r}: row type {ref} is not a product type")
    cols = []
    for i, (cname, _) in enumerate(row.elements):
        if not cname:
            raise ModuleDefError(f"table {raw['source_name']!r}: column {i} has no name")
        cols.append(naming.canonical_snake(cname) if policy_snake else cname)
    ncols = len(cols)

    def check_cols(c: tuple[int, ...], what: str) -> tuple[int, ...]:
        bad = [x for x in c if x >= ncols]
        if bad:
            raise ModuleDefError(f"table {name!r}: {what} refers to column {bad[0]} but the row has {ncols}")
        return c

    indexes = []
    for ix in raw["indexes"]:
        algo, columns = ix["algorithm"]
        columns = check_cols(columns, "an index")
        source = ix["source_name"]
        if source is None:
            raise ModuleDefError(f"table {name!r}: an index has no source_name (V10 requires one)")
        generated = f"{name}_{'_'.join(cols[c] for c in columns)}_idx_{ALGOS[algo]}"
        indexes.append(IndexDef(explicit.get(("index", source), generated), source, ix["accessor_name"], ALGOS[algo],
                                columns))
    unique = [check_cols(c, "a unique constraint") for c in raw["constraints"]]
    pk = raw["primary_key"]
    if len(pk) > 1:
        raise ModuleDefError(f"table {name!r}: a primary key has at most one column")
    sequences = [SequenceDef(s["column"], s["start"], s["min_value"], s["max_value"], s["increment"])
                 for s in raw["sequences"]]
    for s in sequences:
        check_cols((s.column,), "a sequence")
    return TableDef(name, raw["source_name"], ref, row, tuple(cols), pk[0] if pk else None, indexes, unique,
                    sequences, raw["table_access"] == 0, raw["is_event"],
                    {d["col_id"]: d["value"] for d in raw["default_values"]})


def _index_algo(r: _Reader):
    tag = r.sum_tag("RawIndexAlgorithm", 3)
    return (tag, (r.u16(),)) if tag == 2 else (tag, r.collist())


def _constraint(r: _Reader):
    r.option(r.str)
    r.sum_tag("RawConstraintData", 1)
    return r.collist()


def _sequence(r: _Reader) -> dict:
    return {"source_name": r.option(r.str), "column": r.u16(), "start": r.option(r.i128),
            "min_value": r.option(r.i128), "max_value": r.option(r.i128), "increment": r.i128()}


def _v10_table(r: _Reader) -> dict:
    return {
        "source_name": r.str(),
        "product_type_ref": r.u32(),
        "primary_key": r.collist(),
        "indexes": r.vec(lambda: {"source_name": r.option(r.str), "accessor_name": r.option(r.str),
                                  "algorithm": _index_algo(r)}),
        "constraints": r.vec(lambda: _constraint(r)),
        "sequences": r.vec(lambda: _sequence(r)),
        "table_type": r.sum_tag("TableType", 2),
        "table_access": r.sum_tag("TableAccess", 2),
        "default_values": r.vec(lambda: {"col_id": r.u16(), "value": r.bytes()}),
        "is_event": r.bool(),
    }


def _explicit_names(r: _Reader) -> dict:
    kinds = ("table", "function", "index")
    out = {}
    for _ in range(r.u32()):
        kind = kinds[r.sum_tag("ExplicitNameEntry", 3)]
        source, canonical = r.str(), r.str()
        out[(kind, source)] = canonical
    return out


_V10_SECTIONS = {
    0: lambda r: r.typespace(),
    1: lambda r: r.vec(lambda: {"scope": r.vec(r.str), "name": r.str(), "ty": r.u32(), "custom": r.bool()}),
    2: lambda r: r.vec(lambda: _v10_table(r)),
    3: lambda r: r.vec(lambda: {"source_name": r.str(), "params": r.product_type(),
                                "visibility": r.sum_tag("FunctionVisibility", 2), "ok": r.type(), "err": r.type()}),
    4: lambda r: r.vec(lambda: {"source_name": r.str(), "params": r.product_type(), "return_type": r.type(),
                                "visibility": r.sum_tag("FunctionVisibility", 2)}),
    5: lambda r: r.vec(lambda: {"source_name": r.str(), "index": r.u32(), "is_public": r.bool(),
                                "is_anonymous": r.bool(), "params": r.product_type(), "return_type": r.type()}),
    6: lambda r: r.vec(lambda: {"source_name": r.option(r.str), "table_name": r.str(), "schedule_at_col": r.u16(),
                                "function_name": r.str()}),
    7: lambda r: r.vec(lambda: {"spec": r.sum_tag("Lifecycle", 3), "function_name": r.str()}),
    8: lambda r: r.vec(r.str),
    9: lambda r: r.sum_tag("CaseConversionPolicy", 2),
    10: _explicit_names,
    11: lambda r: r.vec(r.str),
    12: lambda r: r.vec(lambda: (r.str(), _method_or_any(r), r.str())),
    13: lambda r: r.vec(lambda: (r.str(), r.vec(r.str))),
    14: lambda r: _unsupported("submodules"),
}


def _method_or_any(r: _Reader):
    if r.sum_tag("MethodOrAny", 2) == 1:
        if r.sum_tag("HttpMethod", 10) == 9:
            return r.str()
    return None


def _unsupported(what: str):
    raise ModuleDefError(f"this host does not support {what} yet")


# ---------------------------------------------------------------- V9

def _read_v9(r: _Reader) -> ModuleDef:
    typespace = r.typespace()

    def table() -> dict:
        return {
            "source_name": r.str(),
            "product_type_ref": r.u32(),
            "primary_key": r.collist(),
            "indexes": r.vec(lambda: {"source_name": r.option(r.str), "accessor_name": r.option(r.str),
                                      "algorithm": _index_algo(r)}),
            "constraints": r.vec(lambda: _constraint(r)),
            "sequences": r.vec(lambda: _sequence(r)),
            "schedule": r.option(lambda: {"name": r.option(r.str), "reducer": r.str(), "col": r.u16()}),
            "table_type": r.sum_tag("TableType", 2),
            "table_access": r.sum_tag("TableAccess", 2),
            "default_values": [],
            "is_event": False,
        }

    raw_tables = r.vec(table)
    raw_reducers = r.vec(lambda: {"name": r.str(), "params": r.product_type(),
                                  "lifecycle": r.option(lambda: r.sum_tag("Lifecycle", 3))})
    raw_types = r.vec(lambda: {"scope": r.vec(r.str), "name": r.str(), "ty": r.u32(), "custom": r.bool()})
    defaults: list[tuple[str, int, bytes]] = []
    procedures: list[FunctionDef] = []
    views: list[FunctionDef] = []
    for _ in range(r.u32()):
        tag = r.sum_tag("RawMiscModuleExportV9", 3)
        if tag == 0:
            defaults.append((r.str(), r.u16(), r.bytes()))
        elif tag == 1:
            n = r.str()
            procedures.append(FunctionDef("procedure", n, n, r.product_type(), r.type()))
        else:
            n, index, public, anon = r.str(), r.u32(), r.bool(), r.bool()
            views.append(FunctionDef("view", n, n, r.product_type(), r.type(), index, anon, public))
    rls = r.vec(r.str)
    tables = []
    for raw in raw_tables:
        for ix in raw["indexes"]:  # V9: a missing name is generated from source names
            if ix["source_name"] is None:
                ix["source_name"] = ""
        t = _table(raw, typespace, raw["source_name"], False, {})
        for ix, rix in zip(t.indexes, raw["indexes"]):
            if rix["source_name"]:
                ix.name = rix["source_name"]
        if raw["schedule"]:
            t.schedule = ScheduleDef(raw["schedule"]["reducer"], raw["schedule"]["col"])
        t.default_values = {c: v for tn, c, v in defaults if tn == t.name}
        tables.append(t)
    reducers = [ReducerDef(i, x["name"], x["name"], x["params"],
                           x["lifecycle"] is None and not any(t.schedule and t.schedule.reducer == x["name"]
                                                              for t in tables),
                           LIFECYCLE.get(x["lifecycle"]) if x["lifecycle"] is not None else None)
                for i, x in enumerate(raw_reducers)]
    types = [TypeDef(tuple(t["scope"]), t["name"], t["ty"]) for t in raw_types]
    return ModuleDef(9, typespace, tables, reducers, types, procedures, views, rls)


# ---------------------------------------------------------------- validation

def _validate(m: ModuleDef) -> None:
    seen: dict[str, str] = {}

    def claim(name: str, what: str) -> None:
        if name in seen:
            raise ModuleDefError(f"duplicate name {name!r}: used by {seen[name]} and {what}")
        seen[name] = what

    for t in m.tables:
        if t.name.startswith("st_"):
            raise ModuleDefError(f"table {t.name!r}: names starting with st_ are reserved for system tables")
        claim(t.name, f"table {t.source_name!r}")
        if t.source_name != t.name:
            claim(t.source_name, f"table {t.source_name!r}")
        for ix in t.indexes:
            claim(ix.name, f"index {ix.source_name!r}")
        if t.primary_key is not None and (t.primary_key,) not in t.unique:
            raise ModuleDefError(f"table {t.name!r}: the primary key column needs a unique constraint")
        for u in t.unique:
            if not any(set(ix.columns) == set(u) and len(ix.columns) == len(u) for ix in t.indexes):
                raise ModuleDefError(f"table {t.name!r}: unique constraint on columns {list(u)} has no index")
        for s in t.sequences:
            ty = t.row_type.elements[s.column][1]
            if not (getattr(ty, "is_integer", None) and ty.is_integer()):
                col = t.column_names[s.column]
                raise ModuleDefError(f"table {t.name!r}: auto_inc column {col!r} is not an integer")
        if t.schedule:
            try:
                fn = m.reducer(t.schedule.reducer)
            except KeyError:
                raise ModuleDefError(
                    f"table {t.name!r} is scheduled with {t.schedule.reducer!r}, which is not a reducer"
                ) from None
            params = [ty for _, ty in fn.params.elements]
            if len(params) != 1 or not (isinstance(params[0], RefType) and params[0].index == t.row_ref):
                raise ModuleDefError(f"scheduled reducer {fn.name!r} must take exactly one argument: a {t.name} row")
    names: dict[str, str] = {}
    for f in [*m.reducers, *m.procedures, *m.views]:
        if f.name in names:
            raise ModuleDefError(f"duplicate function name {f.name!r}")
        names[f.name] = f.source_name
    events = [r.lifecycle for r in m.reducers if r.lifecycle]
    for e in set(events):
        if events.count(e) > 1:
            raise ModuleDefError(f"more than one {e} reducer")
    for r in m.reducers:
        if r.lifecycle and r.params.elements:
            raise ModuleDefError(f"lifecycle reducer {r.name!r} must not take parameters")
