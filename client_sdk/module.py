"""What a client knows about a module: its tables, reducers and procedures and how to (de)code them.

Generated bindings build a `ModuleSpec` from their typed classes; without bindings,
`ModuleSpec.from_module_def(mdef)` builds one from a decoded module definition (rows then decode to
small generated classes with attributes named like the columns).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spacetime_core.module_def import view_row
from spacetime_core.sats import (
    AlgebraicType,
    BsatnError,
    ProductType,
    RefType,
    Typespace,
    encoder,
    exact_decoder,
    product,
    sort_key,
)
from spacetime_core.sats.ordering import identity_key
from spacetime_core.sats.satsjson import value_from_json


@dataclass
class IndexSpec:
    """A client-side index over cached rows: `find` when `unique`, else `filter` (by a column prefix)."""

    accessor: str
    columns: tuple[int, ...]
    unique: bool


@dataclass
class TableSpec:
    name: str  # canonical (wire) name
    row_type: ProductType
    typespace: Typespace | None = None
    primary_key: int | None = None
    indexes: tuple[IndexSpec, ...] = ()
    is_event: bool = False
    accessor: str | None = None  # name of `conn.db.<accessor>`; defaults to `name`

    def __post_init__(self) -> None:
        ts = self.typespace
        self.decode_row: Callable[[bytes], Any] = exact_decoder(self.row_type, ts)
        self.encode_row: Callable[[Any], bytes] = encoder(self.row_type, ts)
        self.column_names: tuple[str, ...] = tuple(n or f"_{i}" for i, (n, _) in enumerate(self.row_type.elements))
        self.accessor = self.accessor or self.name
        self._getters = [_getter(self.row_type, i) for i in range(len(self.row_type.elements))]
        self._keys = [sort_key(t, ts) for _, t in self.row_type.elements]

    def column(self, row: Any, i: int) -> Any:
        return self._getters[i](row)

    def column_key(self, row: Any, i: int) -> Any:
        """A hashable key for column `i` of `row` (equal keys <=> SATS-equal values)."""
        k = self._keys[i]
        v = self._getters[i](row)
        return v if k is identity_key else k(v)

    def value_key(self, i: int, value: Any) -> Any:
        k = self._keys[i]
        return value if k is identity_key else k(value)

    def pk_key(self, row: Any) -> Any:
        assert self.primary_key is not None
        return self.column_key(row, self.primary_key)


def _args_encoder(params: ProductType, ts: Typespace | None) -> Callable[[Any], bytes]:
    """Encode arguments given as SATS values (the bindings' classes, `SumValue`s) or, when those do not fit, in
    the SATS-JSON input form the HTTP API takes (sums `{"Variant": payload}` or a bare variant name, options
    `{"some": x}`), so that a client without bindings can name variants. The first error is the one raised."""
    enc = encoder(params, ts)

    def encode_args(value: Any) -> bytes:
        try:
            return enc(value)
        except (BsatnError, TypeError, ValueError) as first:
            if not isinstance(value, (tuple, list)):
                raise
            try:
                return enc(value_from_json(params, list(value), ts))
            except (BsatnError, TypeError, ValueError):
                raise first from None

    return encode_args


@dataclass
class ReducerSpec:
    name: str
    params: ProductType
    typespace: Typespace | None = None

    def __post_init__(self) -> None:
        self.encode_args: Callable[[Any], bytes] = _args_encoder(self.params, self.typespace)
        self.decode_args: Callable[[bytes], Any] = exact_decoder(self.params, self.typespace)


@dataclass
class ProcedureSpec:
    name: str
    params: ProductType
    return_type: AlgebraicType
    typespace: Typespace | None = None

    def __post_init__(self) -> None:
        self.encode_args = _args_encoder(self.params, self.typespace)
        self.decode_return = exact_decoder(self.return_type, self.typespace)


@dataclass
class ModuleSpec:
    tables: dict[str, TableSpec] = field(default_factory=dict)
    reducers: dict[str, ReducerSpec] = field(default_factory=dict)
    procedures: dict[str, ProcedureSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, tables: Iterable[TableSpec] = (), reducers: Iterable[ReducerSpec] = (),
           procedures: Iterable[ProcedureSpec] = ()) -> ModuleSpec:
        return cls({t.name: t for t in tables}, {r.name: r for r in reducers}, {p.name: p for p in procedures})

    @classmethod
    def from_module_def(cls, mdef: Any) -> ModuleSpec:
        """Build from a `harness.host.ModuleDef` (decoded from a wasm or fetched from a server)."""
        ts = mdef.typespace
        names = {t.ref: t.name for t in getattr(mdef, "types", [])}
        tables = []
        for t in mdef.tables:
            row = ts[t.row_ref] if t.row_ref < len(ts) else t.row_type
            row_type = _bind_dynamic(row, names.get(t.row_ref) or _class_name(t.name))
            tables.append(TableSpec(t.name, row_type, ts, t.primary_key, _index_specs(t), t.is_event))
        for v in getattr(mdef, "views", []):  # a view reads like a table of its rows, keyed by its primary key
            ref, _query = view_row(v, ts)
            row = ts[ref] if ref is not None and not v.params.elements else None
            if isinstance(row, ProductType):
                row_type = _bind_dynamic(row, names.get(ref) or _class_name(v.name))
                tables.append(TableSpec(v.name, row_type, ts, v.primary_key, (), False))
        reducers = [ReducerSpec(r.name, r.params, ts) for r in mdef.reducers if r.client_callable]
        procedures = [ProcedureSpec(p.name, p.params, p.return_type, ts) for p in getattr(mdef, "procedures", [])]
        return cls.of(tables, reducers, procedures)


def _index_specs(t: Any) -> tuple[IndexSpec, ...]:
    out = []
    uniques = {tuple(sorted(u)) for u in t.unique}
    for ix in t.indexes:
        if not ix.accessor:
            continue
        out.append(IndexSpec(ix.accessor, tuple(ix.columns), tuple(sorted(ix.columns)) in uniques))
    return tuple(out)


def _class_name(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("-", "_").split("_") if p) or "Row"


def _bind_dynamic(row: AlgebraicType, name: str) -> ProductType:
    """A copy of `row` bound to a fresh `@product` class (attribute per column) when its names allow."""
    if not isinstance(row, ProductType):
        raise TypeError(f"row type of {name} is not a product")
    names = [n for n, _ in row.elements]
    if any(n is None or not n.isidentifier() or n.startswith("__") for n in names) or len(set(names)) != len(names):
        return ProductType(row.elements)  # rows stay tuples
    ns: dict[str, Any] = {"__annotations__": {n: t for n, t in row.elements}, "__module__": __name__}
    dyn = product(type(name, (), ns))
    return ProductType(row.elements, cls=dyn)




def _getter(row_type: ProductType, i: int) -> Callable[[Any], Any]:
    name = row_type.elements[i][0]
    if row_type.cls is not None and name:
        return lambda r: getattr(r, name)
    return lambda r: r[i]


def resolve(t: AlgebraicType, ts: Typespace | None) -> AlgebraicType:
    while isinstance(t, RefType) and ts is not None:
        t = ts[t.index]
    return t


__all__ = ["IndexSpec", "ModuleSpec", "ProcedureSpec", "ReducerSpec", "TableSpec", "resolve"]
