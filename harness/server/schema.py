"""`GET /v1/database/{x}/schema?version=9|10`: a module's RawModuleDef as typed SATS-JSON.

The def in the module's own version is read straight from the BSATN the module described itself with (every
field, upstream field names, `crates/lib/src/db/raw_def/v{9,10}.rs`).  The other version is built from the
validated `ModuleDef`, like upstream converts its validated def: a V10 module asked for V9 gets canonical
names, generated index/constraint/sequence/schedule names, lifecycle on the reducers and procedures/views as
misc exports; a V9 module asked for V10 gets sections with `CaseConversionPolicy: None`.
"""

from __future__ import annotations

import struct

from harness.host.module_def import ModuleDef
from module_sdk.sats import decode_product_type, decode_type, decode_typespace
from module_sdk.sats.satsjson import product_type_to_json, type_to_json, typespace_to_json

UNIT: list = []
_ALGO_NAMES = {"btree": "BTree", "hash": "Hash", "direct": "Direct"}
_LIFECYCLE_BY_EVENT = {"init": "Init", "client_connected": "OnConnect", "client_disconnected": "OnDisconnect"}
_HTTP_METHODS = ("Get", "Head", "Post", "Put", "Delete", "Connect", "Options", "Trace", "Patch", "Extension")


def some(v):
    return {"none": UNIT} if v is None else {"some": v}


class _R:
    def __init__(self, b: bytes):
        self.b, self.p = b, 0

    def u8(self):
        self.p += 1
        return self.b[self.p - 1]

    def u16(self):
        self.p += 2
        return struct.unpack_from("<H", self.b, self.p - 2)[0]

    def u32(self):
        self.p += 4
        return struct.unpack_from("<I", self.b, self.p - 4)[0]

    def i128(self):
        self.p += 16
        return int.from_bytes(self.b[self.p - 16:self.p], "little", signed=True)

    def bool(self):
        return self.u8() == 1

    def str(self):
        n = self.u32()
        self.p += n
        return self.b[self.p - n:self.p].decode("utf-8")

    def bytes_hex(self):
        n = self.u32()
        self.p += n
        return self.b[self.p - n:self.p].hex()

    def opt(self, f):
        return some(f()) if self.u8() == 0 else some(None)

    def vec(self, f):
        return [f() for _ in range(self.u32())]

    def tag(self, names):
        return {names[self.u8()]: UNIT}

    def type(self):
        t, self.p = decode_type(self.b, self.p)
        return type_to_json(t)

    def product(self):
        t, self.p = decode_product_type(self.b, self.p)
        return product_type_to_json(t)

    def typespace(self):
        t, self.p = decode_typespace(self.b, self.p)
        return typespace_to_json(t)

    def cols(self):
        return self.vec(self.u16)


def _algo(r: _R):
    tag = r.u8()
    if tag == 2:
        return {"Direct": {"column": r.u16()}}
    return {("BTree", "Hash")[tag]: {"columns": r.cols()}}


def _constraint(r: _R, name_key: str):
    name = r.opt(r.str)
    r.u8()  # RawConstraintData: Unique is the only variant
    return {name_key: name, "data": {"Unique": {"columns": r.cols()}}}


def _sequence(r: _R, name_key: str):
    return {name_key: r.opt(r.str), "column": r.u16(), "start": r.opt(r.i128), "min_value": r.opt(r.i128),
            "max_value": r.opt(r.i128), "increment": r.i128()}


def _index(r: _R, name_key: str):
    return {name_key: r.opt(r.str), "accessor_name": r.opt(r.str), "algorithm": _algo(r)}


def _method(r: _R):
    if r.u8() == 0:
        return {"Any": UNIT}
    tag = r.u8()
    return {"Method": {_HTTP_METHODS[tag]: r.str() if tag == 9 else UNIT}}


def _v10_sections(r: _R) -> list:
    out = []
    for _ in range(r.u32()):
        tag = r.u8()
        if tag == 0:
            out.append({"Typespace": r.typespace()})
        elif tag == 1:
            out.append({"Types": r.vec(lambda: {"source_name": {"scope": r.vec(r.str), "source_name": r.str()},
                                                "ty": r.u32(), "custom_ordering": r.bool()})})
        elif tag == 2:
            out.append({"Tables": r.vec(lambda: {
                "source_name": r.str(), "product_type_ref": r.u32(), "primary_key": r.cols(),
                "indexes": r.vec(lambda: _index(r, "source_name")),
                "constraints": r.vec(lambda: _constraint(r, "source_name")),
                "sequences": r.vec(lambda: _sequence(r, "source_name")),
                "table_type": r.tag(("System", "User")), "table_access": r.tag(("Public", "Private")),
                "default_values": r.vec(lambda: {"col_id": r.u16(), "value": r.bytes_hex()}),
                "is_event": r.bool()})})
        elif tag == 3:
            out.append({"Reducers": r.vec(lambda: {
                "source_name": r.str(), "params": r.product(), "visibility": r.tag(("Private", "ClientCallable")),
                "ok_return_type": r.type(), "err_return_type": r.type()})})
        elif tag == 4:
            out.append({"Procedures": r.vec(lambda: {
                "source_name": r.str(), "params": r.product(), "return_type": r.type(),
                "visibility": r.tag(("Private", "ClientCallable"))})})
        elif tag == 5:
            out.append({"Views": r.vec(lambda: {
                "source_name": r.str(), "index": r.u32(), "is_public": r.bool(), "is_anonymous": r.bool(),
                "params": r.product(), "return_type": r.type()})})
        elif tag == 6:
            out.append({"Schedules": r.vec(lambda: {
                "source_name": r.opt(r.str), "table_name": r.str(), "schedule_at_col": r.u16(),
                "function_name": r.str()})})
        elif tag == 7:
            out.append({"LifeCycleReducers": r.vec(lambda: {
                "lifecycle_spec": r.tag(("Init", "OnConnect", "OnDisconnect")), "function_name": r.str()})})
        elif tag == 8:
            out.append({"RowLevelSecurity": r.vec(lambda: {"sql": r.str()})})
        elif tag == 9:
            out.append({"CaseConversionPolicy": r.tag(("None", "SnakeCase"))})
        elif tag == 10:
            out.append({"ExplicitNames": {"entries": r.vec(lambda: {
                ("Table", "Function", "Index")[r.u8()]: {"source_name": r.str(), "canonical_name": r.str()}})}})
        elif tag == 11:
            out.append({"HttpHandlers": r.vec(lambda: {"source_name": r.str()})})
        elif tag == 12:
            out.append({"HttpRoutes": r.vec(lambda: {"handler_function": r.str(), "method": _method(r),
                                                     "path": r.str()})})
        elif tag == 13:
            out.append({"ViewPrimaryKeys": r.vec(lambda: {"view_source_name": r.str(), "columns": r.vec(r.str)})})
        else:
            raise ValueError(f"section tag {tag} is not supported")
    return out


def _v9(r: _R) -> dict:
    out = {"typespace": r.typespace()}
    out["tables"] = r.vec(lambda: {
        "name": r.str(), "product_type_ref": r.u32(), "primary_key": r.cols(),
        "indexes": r.vec(lambda: _index(r, "name")), "constraints": r.vec(lambda: _constraint(r, "name")),
        "sequences": r.vec(lambda: _sequence(r, "name")),
        "schedule": r.opt(lambda: {"name": r.opt(r.str), "reducer_name": r.str(), "scheduled_at_column": r.u16()}),
        "table_type": r.tag(("System", "User")), "table_access": r.tag(("Public", "Private"))})
    out["reducers"] = r.vec(lambda: {"name": r.str(), "params": r.product(),
                                     "lifecycle": r.opt(lambda: r.tag(("Init", "OnConnect", "OnDisconnect")))})
    out["types"] = r.vec(lambda: {"name": {"scope": r.vec(r.str), "name": r.str()}, "ty": r.u32(),
                                  "custom_ordering": r.bool()})

    def misc():
        tag = r.u8()
        if tag == 0:
            return {"ColumnDefaultValue": {"table": r.str(), "col_id": r.u16(), "value": r.bytes_hex()}}
        if tag == 1:
            return {"Procedure": {"name": r.str(), "params": r.product(), "return_type": r.type()}}
        return {"View": {"name": r.str(), "index": r.u32(), "is_public": r.bool(), "is_anonymous": r.bool(),
                         "params": r.product(), "return_type": r.type()}}

    out["misc_exports"] = r.vec(misc)
    out["row_level_security"] = r.vec(lambda: {"sql": r.str()})
    return out


def raw_def_json(raw: bytes) -> tuple[int, dict]:
    """(version, typed JSON) of the RawModuleDef bytes a module described itself with."""
    r = _R(raw)
    tag = r.u8()
    if tag == 2:
        return 10, {"sections": _v10_sections(r)}
    if tag == 1:
        return 9, _v9(r)
    raise ValueError(f"RawModuleDef version tag {tag} is not supported")


# ------------------------------------------------------------------------------ conversions (ModuleDef)

def _table_common(mdef: ModuleDef, t):
    cols = t.column_names
    indexes = [{"algorithm": ({"Direct": {"column": ix.columns[0]}} if ix.algo == "direct"
                              else {_ALGO_NAMES[ix.algo]: {"columns": list(ix.columns)}}),
                "name": ix.name, "accessor_name": ix.accessor} for ix in t.indexes]
    constraints = [f"{t.name}_{'_'.join(cols[c] for c in u)}_key" for u in t.unique]
    sequences = [(f"{t.name}_{cols[s.column]}_seq", s) for s in t.sequences]
    return indexes, constraints, sequences


def _seq_json(name_key, name, s):
    return {name_key: some(name), "column": s.column, "start": some(s.start), "min_value": some(s.min_value),
            "max_value": some(s.max_value), "increment": s.increment}


def v9_from_module_def(mdef: ModuleDef) -> dict:
    tables = []
    for t in mdef.tables:
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
             for t in mdef.types]
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
    tables, schedules = [], []
    for t in mdef.tables:
        indexes, _constraints, sequences = _table_common(mdef, t)
        tables.append({
            "source_name": t.name, "product_type_ref": t.row_ref,
            "primary_key": [] if t.primary_key is None else [t.primary_key],
            "indexes": [{"source_name": some(ix["name"]), "accessor_name": some(ix["accessor_name"]),
                         "algorithm": ix["algorithm"]} for ix in indexes],
            "constraints": [{"source_name": some(None), "data": {"Unique": {"columns": list(u)}}} for u in t.unique],
            "sequences": [_seq_json("source_name", None, s) for _n, s in sequences],
            "table_type": {"User": UNIT}, "table_access": {"Public" if t.public else "Private": UNIT},
            "default_values": [{"col_id": c, "value": bytes(v).hex()} for c, v in sorted(t.default_values.items())],
            "is_event": t.is_event})
        if t.schedule:
            schedules.append({"source_name": some(None), "table_name": t.name,
                              "schedule_at_col": t.schedule.at_column, "function_name": t.schedule.reducer})
    reducers = [{"source_name": r.name, "params": product_type_to_json(r.params),
                 "visibility": {"ClientCallable" if r.client_callable else "Private": UNIT},
                 "ok_return_type": {"Product": {"elements": []}}, "err_return_type": {"String": UNIT}}
                for r in mdef.reducers]
    sections = [
        {"Typespace": typespace_to_json(mdef.typespace)},
        {"Types": [{"source_name": {"scope": list(t.scope), "source_name": t.name}, "ty": t.ref,
                    "custom_ordering": True} for t in mdef.types]},
        {"Tables": tables},
        {"Reducers": reducers},
        {"Procedures": [{"source_name": p.name, "params": product_type_to_json(p.params),
                         "return_type": type_to_json(p.return_type),
                         "visibility": {"ClientCallable" if p.public else "Private": UNIT}} for p in mdef.procedures]},
        {"Views": [{"source_name": v.name, "index": v.index, "is_public": v.public, "is_anonymous": v.is_anonymous,
                    "params": product_type_to_json(v.params), "return_type": type_to_json(v.return_type)}
                   for v in mdef.views]},
        {"Schedules": schedules},
        {"LifeCycleReducers": [{"lifecycle_spec": {_LIFECYCLE_BY_EVENT[r.lifecycle]: UNIT}, "function_name": r.name}
                               for r in mdef.reducers if r.lifecycle]},
        {"RowLevelSecurity": [{"sql": s} for s in mdef.row_level_security]},
        {"CaseConversionPolicy": {"None": UNIT}},
    ]
    return {"sections": sections}


def schema_json(mdef: ModuleDef, version: int) -> dict:
    """The module def as `GET /schema?version=` returns it."""
    own, raw = raw_def_json(mdef.raw) if mdef.raw else (None, None)
    if own == version:
        return raw
    return v10_from_module_def(mdef) if version == 10 else v9_from_module_def(mdef)


__all__ = ["raw_def_json", "schema_json", "v9_from_module_def", "v10_from_module_def"]
