"""Reads and validates the RawModuleDef a module returns from `__describe_module__` (V10, V9).

Decoding is `spacetime_core.sats.raw_def` (the def described once as SATS types, the one BSATN codec); this maps
the decoded value into the dataclasses below.

The result is the host's view of a module: canonical names resolved (shared/spec/module-def.md §5; under the
default snake_case policy also inside the typespace, `convert_typespace`, as upstream's validator does),
index/constraint/sequence names generated as the server does, ReducerIds = positions.  Invalid
definitions raise `ModuleDefError` with a message a module author can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spacetime_core import names as naming
from spacetime_core.sats import ArrayType, BsatnError, ProductType, RefType, SumType, SumValue, Typespace
from spacetime_core.sats import raw_def as rd

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
    column_aliases: tuple[str, ...] = ()  # the module's own column (field) names; SQL accepts them too


@dataclass
class ReducerDef:
    id: int
    name: str  # canonical
    source_name: str
    params: ProductType
    client_callable: bool
    lifecycle: str | None = None
    declared_public: bool = True  # the module's own visibility (client_callable also excludes lifecycle/scheduled)


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
    primary_key: int | None = None  # views: a row column clients treat as the key (ViewPrimaryKeys / Query<T>)


@dataclass
class HttpRouteDef:
    """A route of the HttpRoutes section: requests for `path` (exact, after `/route`) with `method` (None = any
    method) go to HTTP handler `handler` (an index into `ModuleDef.http_handlers`: its HttpHandlerId)."""

    handler: int
    method: str | None
    path: str


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_ROUTE_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_~/")


@dataclass
class TypeDef:
    scope: tuple[str, ...]
    name: str  # canonical: PascalCase under the SnakeCase policy
    ref: int
    source_name: str = ""  # as the module declared it ("" = same as name)


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
    http_handlers: list[str] = field(default_factory=list)  # canonical names; position = HttpHandlerId
    http_handler_sources: list[str] = field(default_factory=list)  # the same handlers' source names
    http_routes: list[HttpRouteDef] = field(default_factory=list)
    # the typespace with the module's own field/variant names (`typespace` has the converted ones); None = same
    source_typespace: Typespace | None = None

    def match_http_route(self, method: str, path: str) -> HttpRouteDef | None:
        """The route serving `method` at `path` (exact match, as upstream's ModuleDef::match_http_route)."""
        for r in self.http_routes:
            if r.path == path and (r.method is None or r.method == method):
                return r
        return None

    def scheduled_function(self, name: str) -> tuple[str, ReducerDef | FunctionDef | None]:
        """What a scheduled table calls: ("reducer", def) or ("procedure", def) (upstream schedules either);
        ("reducer", None) when `name` is neither."""
        for r in self.reducers:
            if name in (r.name, r.source_name):
                return "reducer", r
        for p in self.procedures:
            if name in (p.name, p.source_name):
                return "procedure", p
        return "reducer", None

    def table(self, name: str) -> TableDef:
        for t in self.tables:
            if name in (t.name, t.source_name):
                return t
        raise KeyError(name)

    def reducer(self, name: str) -> ReducerDef:
        """The reducer called `name`: its canonical name or its source name (host API; clients call by canonical
        name only, `client_reducer`)."""
        for r in self.reducers:
            if name in (r.name, r.source_name):
                return r
        raise KeyError(name)

    def client_reducer(self, name: str) -> ReducerDef | None:
        """The reducer a client calls as ``name``: by canonical name only (upstream answers "no such reducer" to
        a source name that case conversion changed)."""
        return next((r for r in self.reducers if r.name == name), None)

    def lifecycle(self, event: str) -> ReducerDef | None:
        return next((r for r in self.reducers if r.lifecycle == event), None)


def decode_module_def(data: bytes, *, max_bytes: int | None = None, max_items: int | None = None) -> ModuleDef:
    """Decode and validate a RawModuleDef (V10 or V9); V8 is refused with a clear message.  The host passes its
    limits (harness.limits `module_def_bytes`, `module_def_items`): a definition over either is refused before
    the objects it declares are built."""
    data = bytes(data)
    if not data:
        raise ModuleDefError("__describe_module__ wrote nothing")
    if data[0] == rd.V8:
        raise ModuleDefError("RawModuleDef V8 is not supported by this host; rebuild the module with a 2.x SDK")
    if data[0] > rd.V10:
        raise ModuleDefError(f"unknown RawModuleDef version tag {data[0]}")
    if max_bytes is not None and len(data) > max_bytes:
        raise ModuleDefError(f"the module definition is {len(data)} bytes, more than {max_bytes} "
                             "(limit module_def_bytes)")
    try:
        value = rd.decode_raw_def(data)
        if max_items is not None:
            _check_counts(value, max_items)
        mdef = _from_v10(value.value) if value.tag == rd.V10 else _from_v9(value.value)
    except BsatnError as e:
        what = "truncated" if "unexpected end of input" in str(e) else "malformed"
        raise ModuleDefError(f"module definition {what}: {e}") from None
    mdef.raw = data
    _validate(mdef)
    return mdef


_SECTION_WORDS = {0: "types", 1: "named types", 2: "tables", 3: "reducers", 4: "procedures", 5: "views",
                  6: "schedules", 7: "lifecycle reducers", 8: "row level security filters", 11: "HTTP handlers",
                  12: "HTTP routes"}


def _check_counts(value: SumValue, limit: int) -> None:
    """Refuse a definition with more than `limit` sections or entries in one section (types, tables, reducers,
    ...) before it is mapped: small entries cost far more host memory than their bytes."""
    if value.tag == rd.V10:
        named = [("sections", value.value[0])]
        named += [(_SECTION_WORDS.get(s.tag) or rd.V10_SECTION_NAMES[s.tag], s.value)
                  for s in value.value[0][:limit + 1]]
    else:
        named = list(zip(("types", "tables", "reducers", "named types", "misc exports", "row level security"),
                         value.value, strict=False))
    for what, v in named:
        if isinstance(v, tuple) and len(v) == 1 and isinstance(v[0], list):  # Typespace {types}
            v = v[0]
        if isinstance(v, list) and len(v) > limit:
            raise ModuleDefError(f"the module definition declares {len(v)} {what}, more than {limit} "
                                 "(limit module_def_items)")


def _algorithm(v: SumValue) -> tuple[int, tuple[int, ...]]:
    return (v.tag, (v.value,)) if v.tag == 2 else (v.tag, tuple(v.value))


def _raw_table(v: tuple, t: ProductType, name_key: str) -> dict:
    """A RawTableDefV10/V9 value as the dict `_table` reads (upstream field names, V10 spelling)."""
    raw = rd.record(t, v)
    raw["source_name"] = raw[name_key]
    raw["primary_key"] = tuple(raw["primary_key"])
    raw["indexes"] = [{"source_name": name, "accessor_name": accessor, "algorithm": _algorithm(algo)}
                      for name, accessor, algo in raw["indexes"]]
    raw["constraints"] = [tuple(data.value[0]) for _name, data in raw["constraints"]]
    raw["sequences"] = [SequenceDef(col, start, lo, hi, inc) for _name, col, start, lo, hi, inc in raw["sequences"]]
    raw["table_access"] = raw["table_access"].tag
    raw.setdefault("default_values", [])
    raw.setdefault("is_event", False)
    return raw


# ---------------------------------------------------------------- V10

def _from_v10(v10: tuple) -> ModuleDef:
    sections: dict[int, object] = {}
    for s in v10[0]:
        if s.tag == 14:
            raise ModuleDefError("this host does not support submodules yet")
        sections.setdefault(s.tag, s.value)  # the validator reads only the first section of each kind
    source_typespace = rd.typespace_from_value(sections[0]) if 0 in sections else Typespace([])
    policy = sections.get(9)
    policy_snake = policy is None or policy.tag == 1
    # upstream validates with the converted typespace: every field is snake_case and every variant
    # lowerCamelCase in what clients see (JSON of rows and arguments, /schema, SQL); BSATN is unaffected
    typespace = convert_typespace(source_typespace) if policy_snake else source_typespace
    kinds = ("table", "function", "index")
    explicit = {(kinds[e.tag], e.value[0]): e.value[1] for e in sections.get(10, ([],))[0]}

    def canon(kind: str, source: str) -> str:
        if (kind, source) in explicit:
            return explicit[(kind, source)]
        return naming.canonical_snake(source) if policy_snake else source

    tables = []
    for v in sections.get(2, []):
        raw = _raw_table(v, rd.RAW_TABLE_DEF_V10, "source_name")
        tables.append(_table(raw, typespace, canon("table", raw["source_name"]), explicit))
    for t in tables:
        t.column_aliases = source_column_names(source_typespace, t.row_ref) or t.column_names
    schedules = {table_name: (function_name, col) for _n, table_name, col, function_name in sections.get(6, [])}
    for t in tables:
        s = schedules.get(t.source_name)
        if s:
            t.schedule = ScheduleDef(canon("function", s[0]), s[1])
    lifecycle = {function_name: LIFECYCLE[spec.tag] for spec, function_name in sections.get(7, [])}
    reducers = []
    for i, (source, params, visibility, _ok, _err) in enumerate(sections.get(3, [])):
        lc = lifecycle.get(source)
        name = canon("function", source)
        scheduled = any(t.schedule and t.schedule.reducer == name for t in tables)
        reducers.append(ReducerDef(i, name, source, rd.product_type_from_value(params),
                                   visibility.tag == 1 and lc is None and not scheduled, lc, visibility.tag == 1))
    missing = set(lifecycle) - {r.source_name for r in reducers}
    if missing:
        raise ModuleDefError(f"lifecycle reducer(s) {sorted(missing)} are not in the Reducers section")
    procedures = [FunctionDef("procedure", canon("function", source), source, rd.product_type_from_value(params),
                              rd.algebraic_type_from_value(ret), public=visibility.tag == 1)
                  for source, params, ret, visibility in sections.get(4, [])]
    views = [FunctionDef("view", canon("function", source), source, rd.product_type_from_value(params),
                         rd.algebraic_type_from_value(ret), index, anonymous, public)
             for source, index, public, anonymous, params, ret in sections.get(5, [])]
    types = [TypeDef(tuple(scope), naming.canonical_pascal(name) if policy_snake else name, ty, name)
             for (scope, name), ty, _custom in sections.get(1, [])]
    rls = [sql for (sql,) in sections.get(8, [])]
    mdef = ModuleDef(10, typespace, tables, reducers, types, procedures, views, rls,
                     source_typespace=source_typespace)
    _view_primary_keys(mdef, sections.get(13, []))
    _http(mdef, sections.get(11, []), sections.get(12, []), lambda s: canon("function", s))
    return mdef


def source_column_names(ts: Typespace | None, ref: int | None) -> tuple[str, ...]:
    """The field names of product type `ref` in `ts` (the module's own names), () if there is none."""
    row = ts.types[ref] if ts is not None and ref is not None and ref < len(ts.types) else None
    if not isinstance(row, ProductType):
        return ()
    return tuple(n if n is not None else str(i) for i, (n, _) in enumerate(row.elements))


def _is_special(t) -> bool:
    """Upstream's `AlgebraicType::is_special` (Identity, ConnectionId, Timestamp, TimeDuration, Uuid, Option,
    ScheduleAt, Result): their element names are part of the format and never converted."""
    return t.is_special() or t.is_result()


def convert_type(t, field=naming.canonical_snake, variant=naming.canonical_camel):
    """`t` with every product field name passed through `field` and every sum variant name through `variant`
    (recursively, not into special types or through refs), as upstream's `typespace_case_conversion`."""
    if _is_special(t):
        return t
    if isinstance(t, ProductType):
        return ProductType([(None if n is None else field(n), convert_type(et, field, variant))
                            for n, et in t.elements])
    if isinstance(t, SumType):
        return SumType([(None if n is None else variant(n), convert_type(et, field, variant))
                        for n, et in t.elements])
    if isinstance(t, ArrayType):
        return ArrayType(convert_type(t.elem, field, variant))
    return t


def convert_typespace(ts: Typespace) -> Typespace:
    """The typespace as the server sees it under the SnakeCase policy: fields snake_case, variants
    lowerCamelCase (`SimpleEnum.Zero` is `zero` in JSON)."""
    return Typespace([None if t is None else convert_type(t) for t in ts.types])


def view_row(v: FunctionDef, ts: Typespace) -> tuple[int | None, bool]:
    """(row type ref, is a query-builder view) of a view returning Vec<T>, Option<T> or {__query__: T}."""
    ret = v.return_type
    if isinstance(ret, ProductType) and [n for n, _ in ret.elements] == ["__query__"]:
        elem, query = ret.elements[0][1], True
    elif getattr(ret, "is_array", lambda: False)():
        elem, query = ret.elem, False
    elif getattr(ret, "is_option", lambda: False)():
        elem, query = ret.elements[0][1], False
    else:
        return None, False
    return (elem.index if isinstance(elem, RefType) else None), query


def _view_primary_keys(mdef: ModuleDef, raw: list) -> None:
    """ViewPrimaryKeys (by column source name), then upstream's default for query-builder views: the primary
    key of the table(s) with the view's row type, if they agree."""
    seen: set[str] = set()
    for view_source, columns in raw:
        if view_source in seen:
            raise ModuleDefError(f"view {view_source!r} has more than one ViewPrimaryKeys entry")
        seen.add(view_source)
        if len(columns) > 1:
            raise ModuleDefError(f"view {view_source!r}: a view primary key has at most one column")
        v = next((v for v in mdef.views if v.source_name == view_source), None)
        if v is None:
            raise ModuleDefError(f"ViewPrimaryKeys names {view_source!r}, which is not a view")
        ref, _ = view_row(v, mdef.typespace)
        ts = mdef.source_typespace or mdef.typespace  # the module names columns as it declared them
        row = ts.types[ref] if ref is not None and ref < len(ts.types) else None
        names = [n for n, _ in row.elements] if isinstance(row, ProductType) else []
        if columns:
            if columns[0] not in names:
                raise ModuleDefError(f"view {view_source!r} has no column {columns[0]!r} for its primary key")
            v.primary_key = names.index(columns[0])
    for v in mdef.views:
        ref, query = view_row(v, mdef.typespace)
        if query and v.primary_key is None and ref is not None:
            pks = {t.primary_key for t in mdef.tables if t.row_ref == ref and t.primary_key is not None}
            if len(pks) == 1:
                v.primary_key = pks.pop()


def _http(mdef: ModuleDef, handlers: list, routes: list, canon) -> None:
    """HttpHandlers / HttpRoutes (module-def.md §2), checked as upstream's validate_http_route_def does."""
    by_source: dict[str, int] = {}
    for (source,) in handlers:
        name = canon(source)
        if name in mdef.http_handlers:
            raise ModuleDefError(f"duplicate HTTP handler name {name!r}")
        by_source[source] = len(mdef.http_handlers)
        mdef.http_handlers.append(name)
        mdef.http_handler_sources.append(source)
    for handler, method, path in routes:
        if (path and not path.startswith("/")) or not _ROUTE_PATH_CHARS.issuperset(path):
            raise ModuleDefError(f"invalid HTTP route path {path!r}: use '' or '/...' with a-z 0-9 - _ ~ /")
        if handler not in by_source:
            raise ModuleDefError(f"HTTP route {path!r} names {handler!r}, which is not an HTTP handler")
        m = None if method.tag == 0 else (HTTP_METHODS[method.value.tag] if method.value.tag < 9
                                          else method.value.value)
        for r in mdef.http_routes:
            if r.path == path and (r.method is None or m is None or r.method == m):
                raise ModuleDefError(f"duplicate HTTP route {m or 'ANY'} {path!r}")
        mdef.http_routes.append(HttpRouteDef(by_source[handler], m, path))


def _table(raw: dict, ts: Typespace, name: str, explicit: dict) -> TableDef:
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
        if cname in cols:
            raise ModuleDefError(f"table {raw['source_name']!r}: two columns are named {cname!r}"
                                 " (after case conversion)")
        cols.append(cname)  # a V10 typespace is already converted (convert_typespace)
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
    sequences = raw["sequences"]
    for s in sequences:
        check_cols((s.column,), "a sequence")
    return TableDef(name, raw["source_name"], ref, row, tuple(cols), pk[0] if pk else None, indexes, unique,
                    sequences, raw["table_access"] == 0, raw["is_event"], dict(raw["default_values"]))


# ---------------------------------------------------------------- V9

def _from_v9(v9: tuple) -> ModuleDef:
    raw_typespace, raw_tables, raw_reducers, raw_types, misc, raw_rls = v9
    typespace = rd.typespace_from_value(raw_typespace)
    defaults: list[tuple[str, int, bytes]] = []
    procedures: list[FunctionDef] = []
    views: list[FunctionDef] = []
    for m in misc:
        if m.tag == 0:
            defaults.append(m.value)
        elif m.tag == 1:
            n, params, ret = m.value
            procedures.append(FunctionDef("procedure", n, n, rd.product_type_from_value(params),
                                          rd.algebraic_type_from_value(ret)))
        else:
            n, index, public, anon, params, ret = m.value
            views.append(FunctionDef("view", n, n, rd.product_type_from_value(params),
                                     rd.algebraic_type_from_value(ret), index, anon, public))
    tables = []
    for v in raw_tables:
        raw = _raw_table(v, rd.RAW_TABLE_DEF_V9, "name")
        for ix in raw["indexes"]:  # V9: a missing name is generated from source names
            if ix["source_name"] is None:
                ix["source_name"] = ""
        t = _table(raw, typespace, raw["source_name"], {})
        for ix, rix in zip(t.indexes, raw["indexes"]):
            if rix["source_name"]:
                ix.name = rix["source_name"]
        if raw["schedule"]:
            _name, reducer, col = raw["schedule"]
            t.schedule = ScheduleDef(reducer, col)
        t.default_values = {c: v for tn, c, v in defaults if tn == t.name}
        tables.append(t)
    reducers = []
    for i, (name, params, lifecycle) in enumerate(raw_reducers):
        scheduled = any(t.schedule and t.schedule.reducer == name for t in tables)
        reducers.append(ReducerDef(i, name, name, rd.product_type_from_value(params),
                                   lifecycle is None and not scheduled,
                                   LIFECYCLE[lifecycle.tag] if lifecycle is not None else None))
    types = [TypeDef(tuple(scope), name, ty) for (scope, name), ty, _custom in raw_types]
    return ModuleDef(9, typespace, tables, reducers, types, procedures, views, [sql for (sql,) in raw_rls])



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
            kind, fn = m.scheduled_function(t.schedule.reducer)
            if fn is None:
                raise ModuleDefError(f"Schedule {t.name}_sched refers to a scheduled reducer or procedure "
                                     f"{t.schedule.reducer} that does not exist")
            params = [ty for _, ty in fn.params.elements]
            if len(params) != 1 or not (isinstance(params[0], RefType) and params[0].index == t.row_ref):
                raise ModuleDefError(f"scheduled {kind} {fn.name!r} must take exactly one argument: a {t.name} row")
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
