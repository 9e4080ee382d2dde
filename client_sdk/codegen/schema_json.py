"""A module definition from a server's `GET /v1/database/{x}/schema?version=10` (typed SATS-JSON, http-api.md
§3.9): the JSON is read with `satsjson.value_from_json` against `spacetime_core.sats.raw_def`'s types, written back as
RawModuleDefV10 BSATN with `encode_raw_def` and read with `spacetime_core.module_def`, so a def from a server and one
from a wasm go through the same codec, reader and validation."""

from __future__ import annotations

from spacetime_core.module_def import ModuleDef, decode_module_def
from spacetime_core.sats import SumValue
from spacetime_core.sats import raw_def as rd
from spacetime_core.sats.satsjson import value_from_json

# Sections client bindings need (views are read-only tables there); RLS, HTTP handlers... are left out.
_SECTIONS = ("Typespace", "Types", "Tables", "Reducers", "Procedures", "Views", "Schedules", "LifeCycleReducers",
             "CaseConversionPolicy", "ExplicitNames", "ViewPrimaryKeys")


def module_def_from_schema_json(obj: dict) -> ModuleDef:
    """Read the v10 schema JSON (`{"sections": [...]}`) into a validated ModuleDef."""
    if "sections" not in obj:
        raise ValueError("only the v10 schema (GET .../schema?version=10) is supported")
    sections = [s for s in obj["sections"] if isinstance(s, dict) and len(s) == 1 and next(iter(s)) in _SECTIONS]
    value = value_from_json(rd.RAW_MODULE_DEF_V10, {"sections": sections}, rd.TYPESPACE)
    return decode_module_def(rd.encode_raw_def(SumValue(rd.V10, value)))


def module_def_from_server(server: str, database: str, token: str | None = None) -> ModuleDef:
    from client_sdk.http import SpacetimeHttp

    return module_def_from_schema_json(SpacetimeHttp(server, token=token).schema(database, 10))
