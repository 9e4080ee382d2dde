"""`GET /v1/database/{x}/schema?version=9|10`: a module's RawModuleDef as typed SATS-JSON.

The def in the module's own version is read straight from the BSATN the module described itself with (every
field, upstream field names, `crates/lib/src/db/raw_def/v{9,10}.rs`): `spacetime_core.sats.raw_def` decodes it and
`satsjson` writes the typed JSON.  The other version is built from the validated `ModuleDef`, like upstream
converts its validated def: a V10 module asked for V9 gets canonical names, generated
index/constraint/sequence/schedule names, lifecycle on the reducers and procedures/views as misc exports; a V9
module asked for V10 gets sections with `CaseConversionPolicy: None`.
"""

from __future__ import annotations

from spacetime_core.module_def import ModuleDef, view_row
from spacetime_core.sats import raw_def as rd
from spacetime_core.sats.satsjson import product_type_to_json, type_to_json, typed_value_to_json, typespace_to_json

UNIT: list = []
_ALGO_NAMES = {"btree": "BTree", "hash": "Hash", "direct": "Direct"}
_LIFECYCLE_BY_EVENT = {"init": "Init", "client_connected": "OnConnect", "client_disconnected": "OnDisconnect"}


def some(v):
    return {"none": UNIT} if v is None else {"some": v}


def raw_def_json(raw: bytes) -> tuple[int, dict]:
    """(version, typed JSON) of the RawModuleDef bytes a module described itself with."""
    v = rd.decode_raw_def(raw)
    if v.tag == rd.V10:
        return 10, typed_value_to_json(rd.RAW_MODULE_DEF_V10, v.value, rd.TYPESPACE)
    return 9, typed_value_to_json(rd.RAW_MODULE_DEF_V9, v.value, rd.TYPESPACE)


# ------------------------------------------------------------------------------ conversions (ModuleDef)

def _table_common(mdef: ModuleDef, t):
    cols = t.column_names
    indexes = [{"algorithm": ({"Direct": ix.columns[0]} if ix.algo == "direct"
                              else {_ALGO_NAMES[ix.algo]: list(ix.columns)}),  # upstream: {"BTree": [0]}
                "name": ix.name, "accessor_name": ix.accessor} for ix in t.indexes]
    constraints = [f"{t.name}_{'_'.join(cols[c] for c in u)}_key" for u in t.unique]
    sequences = [(f"{t.name}_{cols[s.column]}_seq", s) for s in t.sequences]
    return indexes, constraints, sequences


def _seq_json(name_key, name, s):
    return {name_key: some(name), "column": s.column, "start": some(s.start), "min_value": some(s.min_value),
            "max_value": some(s.max_value), "increment": s.increment}


def v9_from_module_def(mdef: ModuleDef) -> dict:
    tables = []
    for t in sorted(mdef.tables, key=lambda t: t.name):  # upstream lists tables and types by name
        indexes, constraints, sequences = _table_common(mdef, t)
        tables.append({
            "name": t.name, "product_type_ref": t.row_ref,
            "primary_key": [] if t.primary_key is None else [t.primary_key],
            "indexes": [{"name": some(ix["name"]), "accessor_name": some(ix["accessor_name"]),
                         "algorithm": ix["algorithm"]} for ix in indexes],
            "constraints": [{"name": some(n), "data": {"Unique": {"columns": list(u)}}}
                            for n, u in zip(constraints, t.unique)],
            "sequences": [_seq_json("name", n, s) for n, s in sequences],
            "schedule": some(None if t.schedule is None else {
                "name": some(f"{t.name}_sched"), "reducer_name": t.schedule.reducer,
                "scheduled_at_column": t.schedule.at_column}),
            "table_type": {"User": UNIT}, "table_access": {"Public" if t.public else "Private": UNIT}})
    reducers = [{"name": r.name, "params": product_type_to_json(r.params),
                 "lifecycle": some(None if r.lifecycle is None else {_LIFECYCLE_BY_EVENT[r.lifecycle]: UNIT})}
                for r in mdef.reducers]
    types = [{"name": {"scope": list(t.scope), "name": t.name}, "ty": t.ref, "custom_ordering": True}
             for t in sorted(mdef.types, key=lambda t: (list(t.scope), t.name))]
    misc: list = []
    for t in mdef.tables:
        for col, value in sorted(t.default_values.items()):
            misc.append({"ColumnDefaultValue": {"table": t.name, "col_id": col, "value": bytes(value).hex()}})
    for p in mdef.procedures:
        misc.append({"Procedure": {"name": p.name, "params": product_type_to_json(p.params),
                                   "return_type": type_to_json(p.return_type)}})
    for v in mdef.views:
        misc.append({"View": {"name": v.name, "index": v.index, "is_public": v.public,
                              "is_anonymous": v.is_anonymous, "params": product_type_to_json(v.params),
                              "return_type": type_to_json(v.return_type)}})
    return {"typespace": typespace_to_json(mdef.typespace), "tables": tables, "reducers": reducers,
            "types": types, "misc_exports": misc,
            "row_level_security": [{"sql": s} for s in mdef.row_level_security]}


def v10_from_module_def(mdef: ModuleDef) -> dict:
    """The validated def re-exported as V10, like upstream's `From<ModuleDef> for RawModuleDefV10`: the converted
    typespace, source (accessor) names in the sections plus an `ExplicitNames` section mapping every table and
    function to its canonical name, generated constraint/sequence/schedule names, canonical names where the
    validated def keeps only those (schedules, lifecycle, routes), empty sections left out, no case policy (the
    names are final).  Upstream writes tables, types and a table's indexes/constraints/sequences in hash-map
    order; ours are sorted by name (tables, types) or in declaration order."""
    explicit: list = []
    tables, schedules = [], []
    for t in sorted(mdef.tables, key=lambda t: t.source_name):
        indexes, constraints, sequences = _table_common(mdef, t)
        explicit.append({"Table": {"source_name": t.source_name, "canonical_name": t.name}})
        tables.append({
            "source_name": t.source_name, "product_type_ref": t.row_ref,
            "primary_key": [] if t.primary_key is None else [t.primary_key],
            "indexes": [{"source_name": some(ix.source_name or ix.name), "accessor_name": some(ix.accessor),
                         "algorithm": i["algorithm"]} for ix, i in zip(t.indexes, indexes)],
            "constraints": [{"source_name": some(n), "data": {"Unique": {"columns": list(u)}}}
                            for n, u in zip(constraints, t.unique)],
            "sequences": [_seq_json("source_name", n, s) for n, s in sequences],
            "table_type": {"User": UNIT}, "table_access": {"Public" if t.public else "Private": UNIT},
            "default_values": [{"col_id": c, "value": bytes(v).hex()} for c, v in sorted(t.default_values.items())],
            "is_event": t.is_event})
        if t.schedule:
            schedules.append({"source_name": some(f"{t.name}_sched"), "table_name": t.name,
                              "schedule_at_col": t.schedule.at_column, "function_name": t.schedule.reducer})
    reducers = []
    for r in mdef.reducers:
        explicit.append({"Function": {"source_name": r.source_name, "canonical_name": r.name}})
        reducers.append({"source_name": r.source_name, "params": product_type_to_json(r.params),
                         "visibility": {"ClientCallable" if r.declared_public else "Private": UNIT},
                         "ok_return_type": {"Product": {"elements": []}}, "err_return_type": {"String": UNIT}})
    procedures = []
    for p in mdef.procedures:
        explicit.append({"Function": {"source_name": p.source_name, "canonical_name": p.name}})
        procedures.append({"source_name": p.source_name, "params": product_type_to_json(p.params),
                           "return_type": type_to_json(p.return_type),
                           "visibility": {"ClientCallable" if p.public else "Private": UNIT}})
    views, view_pks = [], []
    for v in mdef.views:
        explicit.append({"Function": {"source_name": v.source_name, "canonical_name": v.name}})
        views.append({"source_name": v.source_name, "index": v.index, "is_public": v.public,
                      "is_anonymous": v.is_anonymous, "params": product_type_to_json(v.params),
                      "return_type": type_to_json(v.return_type)})
        ref, query = view_row(v, mdef.typespace)
        if not query and v.primary_key is not None and ref is not None:  # only procedural views' keys
            view_pks.append({"view_source_name": v.source_name,
                             "columns": [mdef.typespace.types[ref].elements[v.primary_key][0]]})
    types = [{"source_name": {"scope": list(t.scope), "source_name": t.source_name or t.name}, "ty": t.ref,
              "custom_ordering": True} for t in sorted(mdef.types, key=lambda t: (list(t.scope), t.name))]
    routes = [{"handler_function": mdef.http_handlers[r.handler],
               "method": {"Any": UNIT} if r.method is None else {"Method": _method_json(r.method)}, "path": r.path}
              for r in mdef.http_routes]
    sections: list = [{"Typespace": typespace_to_json(mdef.typespace)}]
    for key, items in (
            ("Types", types), ("Tables", tables), ("Reducers", reducers), ("Procedures", procedures),
            ("HttpHandlers", [{"source_name": s} for s in mdef.http_handler_sources]), ("HttpRoutes", routes),
            ("Views", views), ("ViewPrimaryKeys", view_pks), ("Schedules", schedules),
            ("LifeCycleReducers", [{"lifecycle_spec": {_LIFECYCLE_BY_EVENT[r.lifecycle]: UNIT},
                                    "function_name": r.name} for r in mdef.reducers if r.lifecycle]),
            ("RowLevelSecurity", [{"sql": s} for s in mdef.row_level_security])):
        if items:
            sections.append({key: items})
    sections.append({"ExplicitNames": {"entries": explicit}})
    return {"sections": sections}


_METHOD_NAMES = {"GET": "Get", "HEAD": "Head", "POST": "Post", "PUT": "Put", "DELETE": "Delete",
                 "CONNECT": "Connect", "OPTIONS": "Options", "TRACE": "Trace", "PATCH": "Patch"}


def _method_json(method: str) -> dict:
    return {_METHOD_NAMES[method]: UNIT} if method in _METHOD_NAMES else {"Extension": method}


def _column_lists(obj):
    """Index algorithms as upstream writes them: ``{"BTree": [0]}``, not ``{"BTree": {"columns": [0]}}``."""
    if isinstance(obj, dict):
        if len(obj) == 1:
            (k, v), = obj.items()
            if k in ("BTree", "Hash") and isinstance(v, dict) and set(v) == {"columns"}:
                return {k: v["columns"]}
        return {k: _column_lists(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_column_lists(v) for v in obj]
    return obj


def schema_json(mdef: ModuleDef, version: int) -> dict:
    """The module def as `GET /schema?version=` returns it."""
    if version == 10:
        return v10_from_module_def(mdef)
    own, raw = raw_def_json(mdef.raw) if mdef.raw else (None, None)
    if own == version:
        return _column_lists(raw)
    return v9_from_module_def(mdef)


__all__ = ["raw_def_json", "schema_json", "v9_from_module_def", "v10_from_module_def"]
