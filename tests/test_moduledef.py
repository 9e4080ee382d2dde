"""RawModuleDef V10 built by module_sdk.schema, decoded back with the sats codec against an independent
description of the V10 types (shared/spec/module-def.md section 2), section by section."""

import pytest

from module_sdk import (
    Identity,
    btree,
    client_connected,
    field,
    primary_key,
    product,
    reducer,
    schema,
    settings,
    table,
    u8,
    u32,
    u64,
)
from spacetime_core.sats import (
    BOOL,
    I128,
    STRING,
    U8,
    U16,
    U32,
    UNIT,
    ArrayType,
    ProductType,
    RefType,
    SumType,
    Typespace,
    decode,
    encode,
    option_type,
)
from spacetime_core.sats import types as T

# ---------------------------------------------------------------------------
# The V10 types, written from the spec (not from module_sdk.moduledef)
# ---------------------------------------------------------------------------

TS = Typespace()
ALG = TS.reserve()  # AlgebraicType (recursive)
_ELEMS = ArrayType(ProductType([("name", option_type(STRING)), ("algebraic_type", ALG)]))
PRODUCT_TYPE = ProductType([("elements", _ELEMS)])
SUM_TYPE = ProductType([("variants", _ELEMS)])
_PRIMS = ["String", "Bool", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "I128", "U128", "I256", "U256",
          "F32", "F64"]
TS.set(ALG, SumType([("Ref", U32), ("Sum", SUM_TYPE), ("Product", PRODUCT_TYPE), ("Array", ALG)]
                    + [(p, UNIT) for p in _PRIMS]))


def unit_sum(*names):
    return SumType([(n, UNIT) for n in names])


COL_LIST = ArrayType(U16)
OPT_STR = option_type(STRING)
TYPE_DEF = ProductType([
    ("source_name", ProductType([("scope", ArrayType(STRING)), ("source_name", STRING)])),
    ("ty", U32), ("custom_ordering", BOOL)])
INDEX_DEF = ProductType([
    ("source_name", OPT_STR), ("accessor_name", OPT_STR),
    ("algorithm", SumType([("BTree", COL_LIST), ("Hash", COL_LIST), ("Direct", U16)]))])
CONSTRAINT_DEF = ProductType([
    ("source_name", OPT_STR), ("data", SumType([("Unique", ProductType([("columns", COL_LIST)]))]))])
SEQUENCE_DEF = ProductType([
    ("source_name", OPT_STR), ("column", U16), ("start", option_type(I128)), ("min_value", option_type(I128)),
    ("max_value", option_type(I128)), ("increment", I128)])
TABLE_DEF = ProductType([
    ("source_name", STRING), ("product_type_ref", U32), ("primary_key", COL_LIST),
    ("indexes", ArrayType(INDEX_DEF)), ("constraints", ArrayType(CONSTRAINT_DEF)),
    ("sequences", ArrayType(SEQUENCE_DEF)), ("table_type", unit_sum("System", "User")),
    ("table_access", unit_sum("Public", "Private")),
    ("default_values", ArrayType(ProductType([("col_id", U16), ("value", ArrayType(U8))]))),
    ("is_event", BOOL)])
VISIBILITY = unit_sum("Private", "ClientCallable")
REDUCER_DEF = ProductType([
    ("source_name", STRING), ("params", PRODUCT_TYPE), ("visibility", VISIBILITY), ("ok_return_type", ALG),
    ("err_return_type", ALG)])
PROCEDURE_DEF = ProductType([
    ("source_name", STRING), ("params", PRODUCT_TYPE), ("return_type", ALG), ("visibility", VISIBILITY)])
VIEW_DEF = ProductType([
    ("source_name", STRING), ("index", U32), ("is_public", BOOL), ("is_anonymous", BOOL), ("params", PRODUCT_TYPE),
    ("return_type", ALG)])
SCHEDULE_DEF = ProductType([
    ("source_name", OPT_STR), ("table_name", STRING), ("schedule_at_col", U16), ("function_name", STRING)])
LIFECYCLE_DEF = ProductType([
    ("lifecycle_spec", unit_sum("Init", "OnConnect", "OnDisconnect")), ("function_name", STRING)])
NAME_MAPPING = ProductType([("source_name", STRING), ("canonical_name", STRING)])
EXPLICIT_NAMES = ProductType([("entries", ArrayType(SumType([
    ("Table", NAME_MAPPING), ("Function", NAME_MAPPING), ("Index", NAME_MAPPING)])))])
SECTION = SumType([
    ("Typespace", ArrayType(ALG)), ("Types", ArrayType(TYPE_DEF)), ("Tables", ArrayType(TABLE_DEF)),
    ("Reducers", ArrayType(REDUCER_DEF)), ("Procedures", ArrayType(PROCEDURE_DEF)), ("Views", ArrayType(VIEW_DEF)),
    ("Schedules", ArrayType(SCHEDULE_DEF)), ("LifeCycleReducers", ArrayType(LIFECYCLE_DEF)),
    ("RowLevelSecurity", ArrayType(ProductType([("sql", STRING)]))),
    ("CaseConversionPolicy", unit_sum("None", "SnakeCase")), ("ExplicitNames", EXPLICIT_NAMES)])
RAW_MODULE_DEF = SumType([("V8BackCompat", UNIT), ("V9", UNIT),
                          ("V10", ProductType([("sections", ArrayType(SECTION))]))])


def to_py(t, v):
    """Decoded value -> plain Python: products -> dicts, sums -> (variant, payload), AlgebraicType -> sats type."""
    t = TS.resolve(t) if t.tag == T.TAG_REF else t
    if t is TS.types[ALG.index]:
        return to_alg(v)
    if t.is_option():
        return None if v is None else to_py(t.elements[0][1], v)
    if t.tag == T.TAG_PRODUCT:
        return {n: to_py(et, x) for (n, et), x in zip(t.elements, v, strict=True)}
    if t.tag == T.TAG_SUM:
        name, vt = t.elements[v.tag]
        return name if vt.is_unit() else (name, to_py(vt, v.value))
    if t.tag == T.TAG_ARRAY:
        return v if t.elem is U8 else [to_py(t.elem, x) for x in v]
    return v


def to_alg(v):
    name, vt = TS.types[ALG.index].elements[v.tag]
    if name == "Ref":
        return RefType(v.value)
    if name in ("Product", "Sum"):
        (elems,) = v.value
        out = [(e[0], to_alg(e[1])) for e in elems]
        return ProductType(out) if name == "Product" else SumType(out)
    if name == "Array":
        return ArrayType(to_alg(v.value))
    return {p.name: p for p in T.PRIMITIVES}[name]


def decode_module_def(data: bytes) -> dict:
    """{section name: payload} (each kind at most once) from RawModuleDef bytes; checks exact re-encoding."""
    v = decode(RAW_MODULE_DEF, data, TS)
    assert encode(RAW_MODULE_DEF, v, TS) == data
    tag, payload = to_py(RAW_MODULE_DEF, v)
    assert tag == "V10"
    out = {}
    for name, body in (s if isinstance(s, tuple) else (s, None) for s in payload["sections"]):
        assert name not in out, f"section {name} emitted twice"
        out[name] = body
    return out


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

@pytest.fixture
def m():
    return schema.new_module()


def hexbytes(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


SPEC_MINIMAL = hexbytes("""
02 04000000
00 01000000 02 02000000 00 02000000 6964 0d 00 04000000 6e616d65 04
01 01000000 00000000 06000000 506572736f6e 00000000 01
02 01000000 06000000 706572736f6e 00000000 00000000 00000000 00000000 00000000 01 00 00000000 00
03 01000000 0a000000 6164645f706572736f6e 01000000 00 04000000 6e616d65 04 01 0200000000 04
""")


def test_minimal_module_matches_spec_bytes_exactly(m):

    @table(public=True)
    class Person:
        id: u64
        name: str

    @reducer
    def add_person(ctx, name: str):
        pass

    data = m.describe()
    assert len(data) == 139
    assert data == SPEC_MINIMAL
    from spacetime_core.sats.raw_def import decode_raw_def, encode_raw_def  # the compiled path agrees
    assert encode_raw_def(decode_raw_def(data)) == data
    assert m.finalize().reducers[0].decode_args(bytes.fromhex("020000006162")) == ("ab",)


def test_auto_inc_primary_key_variant_matches_spec_bytes_exactly(m):

    @table(public=True)
    class Person:
        id: u64 = primary_key(auto_inc=True)
        name: str

    @reducer
    def add_person(ctx, name: str):
        pass

    table_head = hexbytes("06000000 706572736f6e 00000000")  # "person", product_type_ref 0
    old_tail = hexbytes("00000000 00000000 00000000 00000000")  # pk, indexes, constraints, sequences
    new_tail = hexbytes("""
        01000000 0000
        01000000 00 13000000 706572736f6e5f69645f6964785f6274726565 00 02000000 6964 00 01000000 0000
        01000000 01 00 01000000 0000
        01000000 01 0000 01 01 01 01000000000000000000000000000000
    """)
    expected = SPEC_MINIMAL.replace(table_head + old_tail, table_head + new_tail, 1)
    assert expected != SPEC_MINIMAL
    data = m.describe()
    assert len(data) == 209
    assert data == expected


def test_minimal_module_decodes_with_the_independent_description(m):

    @table(public=True)
    class Person:
        id: u64
        name: str

    @reducer
    def add_person(ctx, name: str):
        pass

    d = decode_module_def(m.describe())
    assert list(d) == ["Typespace", "Types", "Tables", "Reducers"]
    assert d["Typespace"] == [ProductType([("id", T.U64), ("name", STRING)])]
    assert d["Types"] == [{"source_name": {"scope": [], "source_name": "Person"}, "ty": 0, "custom_ordering": True}]
    (t,) = d["Tables"]
    assert t["source_name"] == "person" and t["table_access"] == "Public" and t["table_type"] == "User"
    (r,) = d["Reducers"]
    assert r["visibility"] == "ClientCallable"
    assert r["ok_return_type"] == UNIT and r["err_return_type"] == STRING


# ---------------------------------------------------------------------------
# A module using every section
# ---------------------------------------------------------------------------

FULL_MODULE = '''
from module_sdk import (
    AnonymousViewContext, Identity, Option, ProcedureContext, ReducerContext, Result, ScheduleAt, Timestamp,
    ViewContext, auto_inc, btree, client_connected, client_disconnected, client_visibility_filter, default,
    direct, field, hash_index, index, init, primary_key, procedure, product, reducer, sum, table, u8, u32, u64,
    unique, view, anonymous_view,
)

@sum
class Color:
    Red: None
    Green: None
    Custom: u32

@product
class Point:
    __type_name__ = "Geo.Point"
    x: int
    y: int

@table(public=True, name="PlayerCanonical",
       indexes=[btree("name", "level", accessor="by_name_level", name="player_by_nl"), hash_index("color")])
class Player:
    id: u64 = auto_inc(primary_key=True)
    identity: Identity = unique(index="hash")
    name: str
    level: u32 = index()
    slot: u8 = index("direct")
    color: Color
    home: Option[Point] = None
    score: int = default(7)

@table(accessor="tick_schedule", scheduled=lambda: tick)
class Tick:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt
    note: str = ""

@table(event=True)
class Splash:
    at: Point
    where_: list[Point]

@reducer
def add_player(ctx: ReducerContext, name: str, color: Color, home: Option[Point]):
    pass

@reducer
def tick(ctx: ReducerContext, row: Tick):
    pass

@init
def setup(ctx):
    pass

@client_connected
def hello(ctx):
    pass

@client_disconnected
def bye(ctx):
    pass

@reducer(name="renamedReducer", private=True)
def secret(ctx, r: Result[u32, str]):
    pass

@view
def me(ctx: ViewContext) -> Option[Player]:
    return None

@view
def everyone(ctx: AnonymousViewContext) -> list[Player]:
    return []

@anonymous_view
def points(ctx) -> list[Point]:
    return []

@procedure
def fetch(ctx: ProcedureContext, url: str) -> Point:
    return Point(1, 2)

@procedure
def nothing(ctx: ProcedureContext):
    pass

client_visibility_filter("SELECT * FROM player_canonical WHERE identity = :sender")
'''


def load(source: str, tmp_path, name="user_mod"):
    """Execute module source as a real module file (so annotations and globals resolve normally)."""
    import importlib.util
    import sys

    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # kept: lazily resolved annotations look up the module's globals through it
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def full(m, tmp_path):
    mod = load(FULL_MODULE, tmp_path)
    return mod, m, decode_module_def(m.describe())


def test_sections_present_in_tag_order(full):
    _, _, d = full
    assert list(d) == ["Typespace", "Types", "Tables", "Reducers", "Procedures", "Views", "Schedules",
                       "LifeCycleReducers", "RowLevelSecurity", "ExplicitNames"]


def test_user_types_live_in_the_typespace_once_each(full):
    _, _, d = full
    types = {".".join(t["source_name"]["scope"] + [t["source_name"]["source_name"]]): t["ty"] for t in d["Types"]}
    assert set(types) == {"Player", "Color", "Geo.Point", "Tick", "Splash"}
    assert all(t["custom_ordering"] for t in d["Types"])
    ts = d["Typespace"]
    assert len(ts) == 5
    player = ts[types["Player"]]
    cols = dict(player.elements)
    assert cols["color"] == RefType(types["Color"])
    assert cols["home"] == option_type(RefType(types["Geo.Point"]))
    assert cols["identity"].is_identity()  # special types stay inline
    assert ts[types["Color"]] == SumType([("Red", UNIT), ("Green", UNIT), ("Custom", U32)])
    assert ts[types["Geo.Point"]] == ProductType([("x", T.I64), ("y", T.I64)])
    splash = dict(ts[types["Splash"]].elements)
    assert splash["at"] == RefType(types["Geo.Point"]) and splash["where_"] == ArrayType(RefType(types["Geo.Point"]))
    tick = dict(ts[types["Tick"]].elements)
    assert tick["scheduled_at"].is_schedule_at()


def test_table_constraints_indexes_sequences_defaults(full):
    _, _, d = full
    player, tick, splash = d["Tables"]
    assert player["source_name"] == "player"
    assert player["primary_key"] == [0]
    assert player["table_access"] == "Public" and not player["is_event"]
    # unique-backed indexes first (column order), then column indexes, then table-level indexes
    assert player["indexes"] == [
        {"source_name": "player_id_idx_btree", "accessor_name": "id", "algorithm": ("BTree", [0])},
        {"source_name": "player_identity_idx_hash", "accessor_name": "identity", "algorithm": ("Hash", [1])},
        {"source_name": "player_level_idx_btree", "accessor_name": "level", "algorithm": ("BTree", [3])},
        {"source_name": "player_slot_idx_direct", "accessor_name": "slot", "algorithm": ("Direct", 4)},
        {"source_name": "player_name_level_idx_btree", "accessor_name": "by_name_level",
         "algorithm": ("BTree", [2, 3])},
        {"source_name": "player_color_idx_hash", "accessor_name": "color", "algorithm": ("Hash", [5])},
    ]
    assert player["constraints"] == [{"source_name": None, "data": ("Unique", {"columns": [0]})},
                                     {"source_name": None, "data": ("Unique", {"columns": [1]})}]
    assert player["sequences"] == [{"source_name": None, "column": 0, "start": None, "min_value": None,
                                    "max_value": None, "increment": 1}]
    assert player["default_values"] == [{"col_id": 6, "value": b"\x01"},
                                        {"col_id": 7, "value": (7).to_bytes(8, "little")}]
    assert tick["source_name"] == "tick_schedule" and tick["table_access"] == "Private"
    assert tick["default_values"] == [{"col_id": 2, "value": b"\x00\x00\x00\x00"}]
    assert splash["is_event"] and splash["indexes"] == [] and splash["primary_key"] == []


def test_functions_schedules_lifecycle_views_procedures(full):
    _, m, d = full
    names = [r["source_name"] for r in d["Reducers"]]
    assert names == ["add_player", "tick", "setup", "hello", "bye", "secret"]  # ReducerId = declaration order
    assert [f.index for f in m.finalize().reducers] == list(range(6))
    vis = {r["source_name"]: r["visibility"] for r in d["Reducers"]}
    assert vis == {"add_player": "ClientCallable", "tick": "Private", "setup": "Private", "hello": "Private",
                   "bye": "Private", "secret": "Private"}
    types = {t["source_name"]["source_name"]: t["ty"] for t in d["Types"]}
    add = d["Reducers"][0]["params"]["elements"]
    assert add == [{"name": "name", "algebraic_type": STRING},
                   {"name": "color", "algebraic_type": RefType(types["Color"])},
                   {"name": "home", "algebraic_type": option_type(RefType(types["Point"]))}]
    tick_params = d["Reducers"][1]["params"]
    assert tick_params["elements"] == [{"name": "row", "algebraic_type": RefType(types["Tick"])}]
    secret = d["Reducers"][5]["params"]["elements"][0]["algebraic_type"]
    assert secret.is_result() and secret.elements[0][1] == U32
    assert d["Schedules"] == [{"source_name": None, "table_name": "tick_schedule", "schedule_at_col": 1,
                               "function_name": "tick"}]
    assert d["LifeCycleReducers"] == [{"lifecycle_spec": "Init", "function_name": "setup"},
                                      {"lifecycle_spec": "OnConnect", "function_name": "hello"},
                                      {"lifecycle_spec": "OnDisconnect", "function_name": "bye"}]
    views = {v["source_name"]: v for v in d["Views"]}
    assert views["me"]["index"] == 0 and not views["me"]["is_anonymous"] and views["me"]["is_public"]
    assert views["me"]["return_type"] == option_type(RefType(types["Player"]))
    assert views["everyone"]["index"] == 0 and views["everyone"]["is_anonymous"]
    assert views["everyone"]["return_type"] == ArrayType(RefType(types["Player"]))
    assert views["points"]["index"] == 1 and views["points"]["is_anonymous"]
    procs = {p["source_name"]: p for p in d["Procedures"]}
    assert procs["fetch"]["return_type"] == RefType(types["Point"])
    assert procs["fetch"]["params"]["elements"] == [{"name": "url", "algebraic_type": STRING}]
    assert procs["nothing"]["return_type"] == UNIT
    assert d["RowLevelSecurity"] == [{"sql": "SELECT * FROM player_canonical WHERE identity = :sender"}]
    assert d["ExplicitNames"] == {"entries": [
        ("Table", {"source_name": "player", "canonical_name": "PlayerCanonical"}),
        ("Index", {"source_name": "player_name_level_idx_btree", "canonical_name": "player_by_nl"}),
        ("Function", {"source_name": "secret", "canonical_name": "renamedReducer"}),
    ]}


def test_case_conversion_none_is_emitted(m):

    settings(case_conversion="none")

    @reducer
    def DoThing(ctx):  # noqa: N802
        pass

    d = decode_module_def(m.describe())
    assert d["CaseConversionPolicy"] == "None"
    assert "Typespace" not in d and "Tables" not in d


def test_two_tables_share_one_row_type(m):

    @table(accessor="logged_out_player")
    @table(public=True)
    class Player:
        identity: Identity = primary_key()
        name: str

    d = decode_module_def(m.describe())
    assert [t["source_name"] for t in d["Tables"]] == ["player", "logged_out_player"]
    assert {t["product_type_ref"] for t in d["Tables"]} == {0}
    assert len(d["Types"]) == 1
    assert m.db.player._cls is m.db.logged_out_player._cls is Player


def test_row_types_as_columns_are_refs(m):

    @table
    class OneU8:
        n: u8

    @table
    class TableHoldsTable:
        a: OneU8

    d = decode_module_def(m.describe())
    assert d["Typespace"][1] == ProductType([("a", RefType(0))])
    assert [t["source_name"] for t in d["Tables"]] == ["one_u8", "table_holds_table"]


def test_unit_struct_is_a_named_type(m):

    @product
    class UnitStruct:
        pass

    @table
    class OneUnitStruct:
        s: UnitStruct

    d = decode_module_def(m.describe())
    assert d["Typespace"] == [ProductType([("s", RefType(1))]), ProductType([])]
    assert [t["source_name"]["source_name"] for t in d["Types"]] == ["OneUnitStruct", "UnitStruct"]


def test_module_def_is_deterministic(tmp_path):
    first = schema.new_module()
    load(FULL_MODULE, tmp_path, "full_a")
    second = schema.new_module()
    load(FULL_MODULE, tmp_path, "full_b")
    assert first.describe() == second.describe()


def test_string_annotations_resolve(m, tmp_path):
    load('''
from __future__ import annotations
from module_sdk import table, reducer, u32, Option

@reducer
def later(ctx, row: Later, n: Option[u32]):
    pass

@table
class Later:
    n: u32
''', tmp_path, "future_mod")
    d = decode_module_def(m.describe())
    assert d["Reducers"][0]["params"]["elements"][0]["algebraic_type"] == RefType(0)


# ---------------------------------------------------------------------------
# Validation (module-def.md section 9): errors at build time, naming the culprit
# ---------------------------------------------------------------------------

BAD = {
    "two primary keys": ("from module_sdk import table, primary_key, u32\n"
                         "@table\nclass A:\n    a: u32 = primary_key()\n    b: u32 = primary_key()\n",
                         "more than one primary key"),
    "auto_inc on a string": ("from module_sdk import table, auto_inc\n@table\nclass A:\n    a: str = auto_inc()\n",
                             "auto_inc column a must be an integer"),
    "unknown index column": ("from module_sdk import table, btree, u32\n@table(indexes=[btree('a', 'zz')])\n"
                             "class A:\n    a: u32\n", "unknown column 'zz'"),
    "same column twice": ("from module_sdk import table, btree, u32\n@table(indexes=[btree('a', 'a')])\n"
                          "class A:\n    a: u32\n", "twice"),
    "duplicate index": ("from module_sdk import table, btree, index, u32\n@table(indexes=[btree('a', accessor='x')])\n"
                        "class A:\n    a: u32 = index()\n", "two indexes over the same columns"),
    "direct on a string": ("from module_sdk import table, index\n@table\nclass A:\n    a: str = index('direct')\n",
                           "direct index needs"),
    "accessor clash": ("from module_sdk import table, btree, u32\n@table(indexes=[btree('a', accessor='insert')])\n"
                       "class A:\n    a: u32\n", "clashes with a table handle attribute"),
    "st_ table": ("from module_sdk import table, u32\n@table(name='st_mine')\nclass A:\n    a: u32\n",
                  "must not start with st_"),
    "canonical collision": ("from module_sdk import table, u32\n@table\nclass Player1:\n    a: u32\n"
                            "@table(accessor='player_1')\nclass P:\n    a: u32\n", "is used by both"),
    "index name vs table": ("from module_sdk import table, index, u32\n@table\nclass A:\n    b: u32 = index()\n"
                            "@table(accessor='a_b_idx_btree')\nclass B:\n    x: u32\n", "is used by both"),
    "two init": ("from module_sdk import init\n@init\ndef a(ctx): pass\n@init\ndef b(ctx): pass\n", "two init"),
    "reducer canonical clash": ("from module_sdk import reducer\n@reducer\ndef do1(ctx): pass\n"
                                "@reducer(name='do_1')\ndef other(ctx): pass\n", "same canonical name"),
    "missing annotation": ("from module_sdk import reducer\n@reducer\ndef f(ctx, x): pass\n",
                           "parameter 'x' needs a type annotation"),
    "bad annotation": ("from module_sdk import reducer\n@reducer\ndef f(ctx, x: dict): pass\n", "unsupported"),
    "anonymous product": ("from module_sdk import reducer\nfrom spacetime_core.sats import ProductType, U8\n"
                          "@reducer\ndef f(ctx, x: ProductType([('a', U8)])): pass\n", "anonymous product"),
    "scheduled without pk": ("from module_sdk import table, reducer, ScheduleAt\n"
                             "@table(scheduled='go')\nclass S:\n    at: ScheduleAt\n"
                             "@reducer\ndef go(ctx, s: S): pass\n", "u64 primary key"),
    "scheduled wrong params": ("from module_sdk import table, reducer, ScheduleAt, primary_key, u64\n"
                               "@table(scheduled='go')\nclass S:\n    id: u64 = primary_key(auto_inc=True)\n"
                               "    at: ScheduleAt\n@reducer\ndef go(ctx, n: u64): pass\n",
                               "must take exactly one parameter"),
    "scheduled unknown": ("from module_sdk import table, ScheduleAt, primary_key, u64\n"
                          "@table(scheduled='nope')\nclass S:\n    id: u64 = primary_key(auto_inc=True)\n"
                          "    at: ScheduleAt\n", "no reducer or procedure named 'nope'"),
    "view shape": ("from module_sdk import view, u32\n@view\ndef v(ctx) -> u32: return 1\n", "a view returns"),
    "duplicate type name": ("from module_sdk import table, product, u32\n"
                            "def mk():\n    @product\n    class P:\n        a: u32\n    return P\n"
                            "A = mk()\nB = mk()\n@table\nclass T:\n    a: A\n    b: B\n", "two types are named 'P'"),
    "default on pk": ("from module_sdk import table, u32\n@table\nclass A:\n    a: u32 = 5\n    b: u32\n", None),
    "bad explicit name": ("from module_sdk import table, u32\n@table(name='no spaces')\nclass A:\n    a: u32\n",
                          "not a valid identifier"),
    "bad default": ("from module_sdk import table, u8\n@table\nclass A:\n    a: u8 = 300\n",
                    "does not fit its type"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_modules_fail_with_a_clear_message(case, m, tmp_path):
    source, message = BAD[case]
    if message is None:  # valid: plain defaults on ordinary columns are fine
        load(source, tmp_path, "bad_" + case.replace(" ", "_"))
        m.describe()
        return
    with pytest.raises((schema.ModuleDefError, TypeError, ValueError)) as e:
        load(source, tmp_path, "bad_" + case.replace(" ", "_"))
        m.describe()
    assert message in str(e.value)
    if isinstance(e.value, schema.ModuleDefError) and "two init" not in case:
        assert ".py:" in str(e.value)  # the message points at the user's file and line


def test_declaration_errors_are_raised_at_the_decorator(m):

    with pytest.raises(schema.ModuleDefError, match="must take only the context"):
        @client_connected
        def hello(ctx, x: u32):
            pass

    @reducer
    def dup(ctx):
        pass

    with pytest.raises(schema.ModuleDefError, match="same name"):
        @reducer  # noqa: F811
        def dup(ctx):  # noqa: F811
            pass

    with pytest.raises(TypeError, match="default value cannot be a primary key"):
        field(primary_key=True, default=3)

    @table
    class A:
        a: u32 = primary_key()

    with pytest.raises(schema.ModuleDefError, match="two tables use the accessor 'a'"):
        @table(accessor="a")
        class B:
            b: u32

    m.describe()
    with pytest.raises(schema.ModuleDefError, match="after the module was described"):
        @reducer
        def late(ctx):
            pass


def test_explicit_names_only_where_the_canonical_name_differs(m):
    @table(name="same_table", indexes=[btree("a", name="same_table_a_idx_btree")])
    class SameTable:
        a: u32

    @reducer(name="plain_name")
    def plain_name(ctx):
        pass

    @reducer(name="Other")
    def other1(ctx):
        pass

    d = decode_module_def(m.describe())
    assert d["ExplicitNames"] == {"entries": [("Function", {"source_name": "other1", "canonical_name": "Other"})]}


def test_a_product_class_can_become_a_table(m):
    @product
    class Plain:
        a: u32
        b: str = "x"

    T = table(Plain)
    assert T is Plain
    d = decode_module_def(m.describe())
    (t,) = d["Tables"]
    assert t["source_name"] == "plain" and t["default_values"] == [] and t["indexes"] == []


def test_lifecycle_options_on_reducer_point_at_the_decorators(m):
    with pytest.raises(TypeError, match="use the @init decorator"):
        reducer(init=True)
