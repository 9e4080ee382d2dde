"""`spacetime_core.sats.raw_def`: RawModuleDef described once as SATS types.  Byte-exact round trips (example modules,
module-def.md §8, a V9 def, every V10 section), the AlgebraicType converters against the type codec, typed JSON
both ways, and truncated/garbage input giving a ModuleDefError that says where."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.server.schema import raw_def_json, schema_json
from spacetime_core.module_def import ModuleDefError, decode_module_def
from spacetime_core.sats import (
    BOOL,
    BYTES,
    I32,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    U8,
    U64,
    UNIT,
    ArrayType,
    ProductType,
    RefType,
    SumType,
    Typespace,
    encode_type,
    encode_typespace,
    option_type,
    result_type,
)
from spacetime_core.sats import SumValue as S
from spacetime_core.sats import raw_def as rd
from spacetime_core.sats.satsjson import type_to_json, typed_value_to_json, value_from_json

ROOT = Path(__file__).resolve().parents[1]

MINIMAL_V10 = bytes.fromhex(  # module-def.md §8
    "02 04000000"
    "00 01000000 02 02000000 00 02000000 6964 0d 00 04000000 6e616d65 04"
    "01 01000000 00000000 06000000 506572736f6e 00000000 01"
    "02 01000000 06000000 706572736f6e 00000000 00000000 00000000 00000000 00000000 01 00 00000000 00"
    "03 01000000 0a000000 6164645f706572736f6e 01000000 00 04000000 6e616d65 04 01 0200000000 04"
)

ROW = ProductType([("id", U64), ("name", STRING), ("at", SCHEDULE_AT), ("n", I32)])
TS = Typespace([ROW, SumType([("A", UNIT), ("B", ArrayType(option_type(RefType(0))))])])
at, pt = rd.algebraic_type_to_value, rd.product_type_to_value


def v9_value():
    return S(rd.V9, (
        rd.typespace_to_value(TS),
        [("person", 0, [0], [(None, "id", S(0, [0])), ("person_n_idx", None, S(1, [3, 1]))],
          [(None, S(0, ([0],)))], [(None, 0, None, 1, None, 1)], ("sched", "tick", 2), S(1), S(0)),
         ("other", 0, [], [(None, None, S(2, 3))], [], [], None, S(1), S(1))],
        [("add_person", pt(ProductType([("name", STRING)])), None),
         ("tick", pt(ProductType([("arg", RefType(0))])), None),
         ("init", pt(ProductType([])), S(0)), ("conn", pt(ProductType([])), S(1))],
        [(([], "Person"), 0, True), ((["x"], "E"), 1, False)],
        [S(0, ("person", 3, b"\x05\x00\x00\x00")),
         S(1, ("proc", pt(ProductType([("a", U64)])), at(option_type(STRING)))),
         S(2, ("my_view", 0, True, False, pt(ProductType([])), at(ArrayType(RefType(0)))))],
        [("SELECT * FROM person",)],
    ))


def v10_all_sections_value():
    return S(rd.V10, ([
        S(0, rd.typespace_to_value(TS)),
        S(1, [(([], "Person"), 0, True), ((["x"], "E"), 1, False)]),
        S(2, [("Person", 0, [0], [("idx_id", "id", S(0, [0])), ("idx_n", None, S(2, 3))],
               [(None, S(0, ([0],)))], [("s", 0, 5, 1, 100, 2)], S(1), S(1), [(3, b"\x01\x00\x00\x00")], False),
              ("ev", 0, [], [], [], [], S(1), S(0), [], True)]),
        S(3, [("addPerson", pt(ProductType([("name", STRING)])), S(1), at(UNIT), at(STRING)),
              ("tick", pt(ProductType([("arg", RefType(0))])), S(1), at(UNIT), at(STRING)),
              ("init", pt(ProductType([])), S(0), at(UNIT), at(STRING))]),
        S(4, [("proc", pt(ProductType([("a", U64)])), at(option_type(STRING)), S(1))]),
        S(5, [("myView", 0, True, True, pt(ProductType([])), at(ProductType([("__query__", RefType(0))])))]),
        S(6, [(None, "Person", 2, "tick")]),
        S(7, [(S(0), "init")]),
        S(8, [("SELECT * FROM person",)]),
        S(9, S(1)),
        S(10, ([S(0, ("ev", "Events")), S(1, ("proc", "the_proc")), S(2, ("idx_n", "n_index"))],)),
        S(11, [("h",)]),
        S(12, [("h", S(0), "/a"), ("h", S(1, S(9, "PURGE")), "/b"), ("h", S(1, S(2)), "")]),
        S(13, [("myView", ["id"])]),
    ],))


def round_trip(data: bytes):
    v = rd.decode_raw_def(data)
    assert rd.encode_raw_def(v) == data
    return v


@pytest.fixture(scope="module")
def example_defs() -> dict[str, bytes]:
    from harness.host import Database
    from module_sdk.build import build
    from spacetime_core.sats import Identity

    out = {}
    for name in ("quickstart", "reminders", "sdk_test"):
        wasm = build(ROOT / "examples" / name).output.read_bytes()
        db = Database.create(wasm, owner=Identity.from_bytes(bytes(32)))
        try:
            out[name] = db.mdef.raw
        finally:
            db.close()
    return out


@pytest.mark.slow
def test_example_module_defs_round_trip(example_defs):
    for name, raw in example_defs.items():
        v = round_trip(raw)
        assert v.tag == rd.V10, name
        for s in v.value[0]:  # the AlgebraicType converters are lossless on real defs
            if s.tag == 0:
                assert rd.typespace_to_value(rd.typespace_from_value(s.value)) == s.value
            if s.tag == 3:
                for r in s.value:
                    assert rd.product_type_to_value(rd.product_type_from_value(r[1])) == r[1]
        # typed JSON -> value -> the same bytes (what client codegen does with GET /schema)
        _, j = raw_def_json(raw)
        back = value_from_json(rd.RAW_MODULE_DEF_V10, json.loads(json.dumps(j)), rd.TYPESPACE)
        assert rd.encode_raw_def(S(rd.V10, back)) == raw, name


def test_minimal_v10_from_the_spec():
    assert len(MINIMAL_V10) == 139
    v = round_trip(MINIMAL_V10)
    sections = v.value[0]
    assert [s.tag for s in sections] == [0, 1, 2, 3]
    assert rd.typespace_from_value(sections[0].value).types == [ProductType([("id", U64), ("name", STRING)])]
    assert rd.record(rd.RAW_TABLE_DEF_V10, sections[2].value[0])["source_name"] == "person"
    reducer = rd.record(rd.RAW_REDUCER_DEF_V10, sections[3].value[0])
    assert rd.algebraic_type_from_value(reducer["ok_return_type"]) == UNIT
    assert rd.algebraic_type_from_value(reducer["err_return_type"]) == STRING
    m = decode_module_def(MINIMAL_V10)
    assert [t.name for t in m.tables] == ["person"] and m.reducers[0].name == "add_person"
    j = raw_def_json(MINIMAL_V10)[1]
    assert j["sections"][3]["Reducers"][0] == {
        "source_name": "add_person",
        "params": {"elements": [{"name": {"some": "name"}, "algebraic_type": {"String": []}}]},
        "visibility": {"ClientCallable": []}, "ok_return_type": {"Product": {"elements": []}},
        "err_return_type": {"String": []}}


def test_v9_def():
    raw = rd.encode_raw_def(v9_value())
    assert raw[0] == 1 and round_trip(raw) == v9_value()
    m = decode_module_def(raw)
    assert m.version == 9 and [t.name for t in m.tables] == ["person", "other"]
    person = m.tables[0]
    assert person.primary_key == 0 and person.unique == [(0,)] and person.schedule.reducer == "tick"
    assert [ix.name for ix in person.indexes] == ["person_id_idx_btree", "person_n_idx"]
    assert person.default_values == {3: b"\x05\x00\x00\x00"} and m.tables[1].indexes[0].algo == "direct"
    assert [(r.name, r.lifecycle, r.client_callable) for r in m.reducers] == [
        ("add_person", None, True), ("tick", None, False), ("init", "init", False),
        ("conn", "client_connected", False)]
    assert m.procedures[0].return_type == option_type(STRING) and m.views[0].return_type == ArrayType(RefType(0))
    assert m.row_level_security == ["SELECT * FROM person"]
    j = schema_json(m, 9)
    expected = typed_value_to_json(rd.RAW_MODULE_DEF_V9, v9_value().value, rd.TYPESPACE)
    # index algorithms as upstream writes them: the variant's one field is its payload
    assert expected["tables"][0]["indexes"][0]["algorithm"] == {"BTree": [0]}
    assert j == expected
    assert j["tables"][0]["schedule"] == {"some": {"name": {"some": "sched"}, "reducer_name": "tick",
                                                   "scheduled_at_column": 2}}
    assert j["misc_exports"][0] == {"ColumnDefaultValue": {"table": "person", "col_id": 3, "value": "05000000"}}


def test_v10_every_section_round_trips_through_bytes_and_json():
    raw = rd.encode_raw_def(v10_all_sections_value())
    assert round_trip(raw) == v10_all_sections_value()
    j = raw_def_json(raw)[1]
    assert [next(iter(s)) for s in j["sections"]] == list(rd.V10_SECTION_NAMES[:14])
    assert j["sections"][12]["HttpRoutes"][1]["method"] == {"Method": {"Extension": "PURGE"}}
    back = value_from_json(rd.RAW_MODULE_DEF_V10, json.loads(json.dumps(j)), rd.TYPESPACE)
    assert rd.encode_raw_def(S(rd.V10, back)) == raw
    m = decode_module_def(raw)
    assert [t.name for t in m.tables] == ["person", "Events"] and m.tables[1].is_event
    assert m.tables[0].indexes[1].name == "n_index" and m.procedures[0].name == "the_proc"
    assert m.views[0].is_anonymous and m.lifecycle("init").name == "init"


def _with_schedule(function: str, procedure_params: ProductType) -> bytes:
    sections = list(v10_all_sections_value().value[0])
    sections[4] = S(4, [("proc", pt(procedure_params), at(option_type(STRING)), S(1))])
    sections[6] = S(6, [(None, "Person", 2, function)])
    return rd.encode_raw_def(S(rd.V10, (sections,)))


def test_a_schedule_may_name_a_procedure():
    """Upstream's scheduled tables call a reducer or a procedure (sdk-test-procedure's scheduled_proc)."""
    m = decode_module_def(_with_schedule("proc", ProductType([("row", RefType(0))])))
    assert m.tables[0].schedule.reducer == "the_proc"
    kind, fn = m.scheduled_function("the_proc")
    assert (kind, fn.name) == ("procedure", "the_proc")
    with pytest.raises(ModuleDefError, match="scheduled procedure 'the_proc' must take exactly one argument"):
        decode_module_def(_with_schedule("proc", ProductType([("a", U64)])))
    with pytest.raises(ModuleDefError, match="^Schedule person_sched refers to a scheduled reducer or procedure "
                                             "nope that does not exist$"):
        decode_module_def(_with_schedule("nope", ProductType([("a", U64)])))


def test_submodules_are_decoded_then_refused():
    inner = ([S(9, S(0))],)
    raw = rd.encode_raw_def(S(rd.V10, ([S(14, [("sub", inner)])],)))
    assert round_trip(raw).value[0][0].value[0][1] == inner
    with pytest.raises(ModuleDefError, match="submodules"):
        decode_module_def(raw)


TYPES = [
    U8, STRING, BOOL, BYTES, UNIT, IDENTITY, SCHEDULE_AT, RefType(7), option_type(STRING), result_type(UNIT, STRING),
    ArrayType(ArrayType(option_type(RefType(0)))), ProductType([(None, U8), ("x", SumType([("A", UNIT)]))]),
    SumType([]), SumType([(f"v{i}", UNIT) for i in range(256)]),
]


@pytest.mark.parametrize("t", TYPES, ids=repr)
def test_algebraic_type_values_match_the_type_codec(t):
    v = rd.algebraic_type_to_value(t)
    assert rd.algebraic_type_from_value(v) == t
    from spacetime_core.sats import encode

    b = encode(rd.ALGEBRAIC_TYPE, v, rd.TYPESPACE)
    assert b == encode_type(t)
    assert typed_value_to_json(rd.ALGEBRAIC_TYPE, v, rd.TYPESPACE) == type_to_json(t)
    assert encode(rd.TYPESPACE_TYPE, rd.typespace_to_value(Typespace([t])), rd.TYPESPACE) == \
        encode_typespace(Typespace([t]))


def test_deeply_nested_types():
    t = U8
    for _ in range(40):
        t = ArrayType(option_type(t))
    raw = rd.encode_raw_def(S(rd.V10, ([S(0, rd.typespace_to_value(Typespace([t])))],)))
    assert rd.typespace_from_value(round_trip(raw).value[0][0].value).types == [t]
    bomb = b"\x02\x01\x00\x00\x00\x00\x01\x00\x00\x00" + b"\x03" * 100_000 + b"\x07"
    with pytest.raises(ModuleDefError, match="too deeply"):
        decode_module_def(bomb)


@pytest.mark.parametrize("data, message", [
    (b"", "wrote nothing"),
    (b"\x00", "V8 is not supported"),
    (b"\x05", "unknown RawModuleDef version tag 5"),
    (MINIMAL_V10[:50], r"truncated: .* offset 46 \(RawModuleDef\.V10\.sections\[1\]\.Types\[0\]\.source_name"),
    (MINIMAL_V10 + b"\x00", "trailing bytes"),
    (b"\x02\x01\x00\x00\x00\x0f", r"malformed: .*sections\[0\]\): invalid sum tag 15"),
    (b"\x02\x01\x00\x00\x00\x00\x01\x00\x00\x00\x14", r"Typespace\.types\[0\]\): invalid sum tag 20"),
    (b"\x02\x01\x00\x00\x00\x08\x01\x00\x00\x00\x01\x00\x00\x00\xff", "invalid UTF-8"),
    (b"\x01\x00\x00\x00\x00\x01\x00\x00\x00", "truncated"),
])
def test_bad_input_gives_a_clear_module_def_error(data, message):
    with pytest.raises(ModuleDefError, match=message):
        decode_module_def(data)


def test_every_prefix_and_random_corruption_is_a_module_def_error():
    for k in range(len(MINIMAL_V10)):
        with pytest.raises(ModuleDefError):
            decode_module_def(MINIMAL_V10[:k])
    rng = random.Random(7)
    base = rd.encode_raw_def(v10_all_sections_value())
    for _ in range(300):
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            decode_module_def(bytes(b))
        except ModuleDefError:
            pass
