"""A module definition from a server's `GET /v1/database/{x}/schema?version=10` (typed SATS-JSON, http-api.md
§3.9): the JSON is written back as RawModuleDefV10 BSATN and read with `harness.host.module_def`, so a def from a
server and one from a wasm go through the same reader and validation."""

from __future__ import annotations

import struct
from typing import Any

from harness.host.module_def import ModuleDef, decode_module_def
from module_sdk.sats import encode_product_type, encode_type, encode_typespace
from module_sdk.sats.satsjson import product_type_from_json, type_from_json, typespace_from_json


class _W:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def u8(self, v: int) -> None:
        self.parts.append(bytes([v]))

    def u16(self, v: int) -> None:
        self.parts.append(struct.pack("<H", v))

    def u32(self, v: int) -> None:
        self.parts.append(struct.pack("<I", v))

    def i128(self, v: Any) -> None:
        self.parts.append(int(v).to_bytes(16, "little", signed=True))

    def bool(self, v: bool) -> None:
        self.u8(1 if v else 0)

    def str(self, s: str) -> None:
        b = s.encode("utf-8")
        self.u32(len(b))
        self.parts.append(b)

    def raw(self, b: bytes) -> None:
        self.parts.append(b)

    def vec(self, items: list, f: Any) -> None:
        self.u32(len(items))
        for x in items:
            f(x)

    def opt(self, obj: Any, f: Any) -> None:
        """Typed-JSON Option: {"some": v} / {"none": []} (null accepted for none)."""
        if obj is None or (isinstance(obj, dict) and "none" in obj):
            self.u8(1)
        else:
            self.u8(0)
            f(obj["some"] if isinstance(obj, dict) and "some" in obj else obj)

    def tag(self, obj: Any, names: tuple[str, ...]) -> None:
        key = obj if isinstance(obj, str) else next(iter(obj))
        self.u8(names.index(key))

    def cols(self, cols: list[int]) -> None:
        self.vec(cols, self.u16)

    def type(self, obj: Any) -> None:
        self.raw(encode_type(type_from_json(obj)))

    def product(self, obj: Any) -> None:
        self.raw(encode_product_type(product_type_from_json(obj)))


def _sum1(obj: dict) -> tuple[str, Any]:
    (k, v), = obj.items()
    return k, v


def _table(w: _W, t: dict) -> None:
    w.str(t["source_name"])
    w.u32(t["product_type_ref"])
    w.cols(t["primary_key"])

    def index(ix: dict) -> None:
        w.opt(ix.get("source_name"), w.str)
        w.opt(ix.get("accessor_name"), w.str)
        algo, body = _sum1(ix["algorithm"])
        w.u8(("BTree", "Hash", "Direct").index(algo))
        if algo == "Direct":
            w.u16(body["column"] if isinstance(body, dict) else body)
        else:
            w.cols(body["columns"] if isinstance(body, dict) else body)

    def constraint(c: dict) -> None:
        w.opt(c.get("source_name"), w.str)
        w.u8(0)
        _, body = _sum1(c["data"])
        w.cols(body["columns"] if isinstance(body, dict) else body)

    def sequence(s: dict) -> None:
        w.opt(s.get("source_name"), w.str)
        w.u16(s["column"])
        w.opt(s.get("start"), w.i128)
        w.opt(s.get("min_value"), w.i128)
        w.opt(s.get("max_value"), w.i128)
        w.i128(s["increment"])

    def default(d: dict) -> None:
        w.u16(d["col_id"])
        v = d["value"]
        b = bytes.fromhex(v) if isinstance(v, str) else bytes(v)
        w.u32(len(b))
        w.raw(b)

    w.vec(t.get("indexes", []), index)
    w.vec(t.get("constraints", []), constraint)
    w.vec(t.get("sequences", []), sequence)
    w.tag(t.get("table_type", {"User": []}), ("System", "User"))
    w.tag(t.get("table_access", {"Public": []}), ("Public", "Private"))
    w.vec(t.get("default_values", []), default)
    w.bool(t.get("is_event", False))


def _section(w: _W, name: str, body: Any) -> bool:
    if name == "Typespace":
        w.u8(0)
        w.raw(encode_typespace(typespace_from_json(body)))
    elif name == "Types":
        w.u8(1)

        def typedef(t: dict) -> None:
            n = t["source_name"]
            w.vec(n.get("scope", []), w.str)
            w.str(n.get("source_name", n.get("name")))
            w.u32(t["ty"])
            w.bool(t.get("custom_ordering", False))
        w.vec(body, typedef)
    elif name == "Tables":
        w.u8(2)
        w.vec(body, lambda t: _table(w, t))
    elif name == "Reducers":
        w.u8(3)

        def reducer(r: dict) -> None:
            w.str(r["source_name"])
            w.product(r["params"])
            w.tag(r.get("visibility", {"ClientCallable": []}), ("Private", "ClientCallable"))
            w.type(r.get("ok_return_type", {"Product": {"elements": []}}))
            w.type(r.get("err_return_type", {"String": []}))
        w.vec(body, reducer)
    elif name == "Procedures":
        w.u8(4)

        def procedure(p: dict) -> None:
            w.str(p["source_name"])
            w.product(p["params"])
            w.type(p["return_type"])
            w.tag(p.get("visibility", {"ClientCallable": []}), ("Private", "ClientCallable"))
        w.vec(body, procedure)
    elif name == "Schedules":
        w.u8(6)

        def schedule(s: dict) -> None:
            w.opt(s.get("source_name"), w.str)
            w.str(s["table_name"])
            w.u16(s["schedule_at_col"])
            w.str(s["function_name"])
        w.vec(body, schedule)
    elif name == "LifeCycleReducers":
        w.u8(7)

        def lifecycle(lc: dict) -> None:
            w.tag(lc["lifecycle_spec"], ("Init", "OnConnect", "OnDisconnect"))
            w.str(lc["function_name"])
        w.vec(body, lifecycle)
    elif name == "CaseConversionPolicy":
        w.u8(9)
        w.tag(body, ("None", "SnakeCase"))
    elif name == "ExplicitNames":
        w.u8(10)

        def entry(e: dict) -> None:
            kind, v = _sum1(e)
            w.u8(("Table", "Function", "Index").index(kind))
            w.str(v["source_name"])
            w.str(v["canonical_name"])
        w.vec(body.get("entries", []) if isinstance(body, dict) else body, entry)
    else:  # views, RLS, HTTP handlers...: not needed for client bindings
        return False
    return True


def module_def_from_schema_json(obj: dict) -> ModuleDef:
    """Read the v10 schema JSON (`{"sections": [...]}`) into a validated ModuleDef."""
    if "sections" not in obj:
        raise ValueError("only the v10 schema (GET .../schema?version=10) is supported")
    sections = []
    for s in obj["sections"]:
        name, body = _sum1(s)
        w = _W()
        if _section(w, name, body):
            sections.append(b"".join(w.parts))
    head = _W()
    head.u8(2)
    head.u32(len(sections))
    return decode_module_def(b"".join(head.parts) + b"".join(sections))


def module_def_from_server(server: str, database: str, token: str | None = None) -> ModuleDef:
    from client_sdk.http import SpacetimeHttp

    return module_def_from_schema_json(SpacetimeHttp(server, token=token).schema(database, 10))
