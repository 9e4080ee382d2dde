"""SATS-JSON (http-api.md section 4): typed types, untyped values out, lenient values in."""

import json

import pytest

from spacetime_core.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F64,
    I32,
    I64,
    I256,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIMESTAMP,
    U8,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    UUID,
    ArrayType,
    ConnectionId,
    Err,
    Identity,
    Ok,
    ProductType,
    RefType,
    ScheduleAt,
    Some,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    Typespace,
    Uuid,
    decode,
    encode,
    option_type,
    result_type,
)
from spacetime_core.sats.satsjson import (
    SatsJsonError,
    product_type_from_json,
    product_type_to_json,
    type_from_json,
    type_to_json,
    typed_value_to_json,
    u256_hex,
    value_from_json,
    value_to_json,
)

ALICE = Identity.from_hex("c20035600353a2e93544d898c6ed0eac323e200c0468300f22958f8b472a265d")
COLOR = SumType([("red", UNIT), ("green", UNIT), ("rgb", ProductType([("r", U8), ("g", U8), ("b", U8)]))])


def test_type_json_shapes():
    assert type_to_json(U32) == {"U32": []}
    assert type_to_json(STRING) == {"String": []}
    assert type_to_json(RefType(3)) == {"Ref": 3}
    assert type_to_json(ArrayType(BOOL)) == {"Array": {"Bool": []}}
    assert type_to_json(IDENTITY) == {"Product": {"elements": [
        {"name": {"some": "__identity__"}, "algebraic_type": {"U256": []}}]}}
    assert type_to_json(option_type(STRING)) == {"Sum": {"variants": [
        {"name": {"some": "some"}, "algebraic_type": {"String": []}},
        {"name": {"some": "none"}, "algebraic_type": {"Product": {"elements": []}}}]}}
    assert type_to_json(ProductType([(None, I32)])) == {"Product": {"elements": [
        {"name": {"none": []}, "algebraic_type": {"I32": []}}]}}


@pytest.mark.parametrize("t", [U8, I256, F64, STRING, BYTES, IDENTITY, TIMESTAMP, SCHEDULE_AT, COLOR, RefType(0),
                               option_type(ArrayType(option_type(U64))), result_type(UNIT, STRING),
                               ProductType([("a", U32), (None, RefType(2))])])
def test_type_roundtrip(t):
    j = type_to_json(t)
    assert type_from_json(json.loads(json.dumps(j))) == t


def test_product_type_roundtrip_and_errors():
    p = ProductType([("name", STRING), ("age", U32)])
    assert product_type_from_json(product_type_to_json(p)) == p
    with pytest.raises(SatsJsonError):
        type_from_json({"Nope": []})
    with pytest.raises(SatsJsonError):
        type_from_json({"U8": [], "U16": []})


def test_untyped_values_out():
    assert value_to_json(U32, 7) == 7
    assert value_to_json(U256, 255) == "0xff"
    assert value_to_json(I256, -16) == "-0x10"
    assert u256_hex(0) == "0x0"
    assert value_to_json(BYTES, b"\x01\xab") == "01ab"
    assert value_to_json(option_type(U32), 5) == [0, 5]
    assert value_to_json(option_type(U32), None) == [1, []]
    assert value_to_json(option_type(option_type(U32)), Some(None)) == [0, [1, []]]
    assert value_to_json(IDENTITY, ALICE) == ["0x" + ALICE.to_hex()]
    assert value_to_json(TIMESTAMP, Timestamp(1234)) == [1234]
    assert value_to_json(CONNECTION_ID, ConnectionId.from_u128(9)) == [9]
    assert value_to_json(UUID, Uuid(5)) == [5]
    assert value_to_json(SCHEDULE_AT, ScheduleAt.interval(TimeDuration(10))) == [0, [10]]
    assert value_to_json(SCHEDULE_AT, ScheduleAt.time(Timestamp(20))) == [1, [20]]
    assert value_to_json(result_type(U32, STRING), Err("no")) == [1, "no"]
    assert value_to_json(COLOR, SumValue(1)) == [1, []]
    assert value_to_json(COLOR, SumValue(2, (1, 2, 3))) == [2, [1, 2, 3]]
    assert value_to_json(UNIT, ()) == []
    ts = Typespace([ProductType([("x", I32), ("tags", ArrayType(STRING))])])
    assert value_to_json(RefType(0), (-1, ["a"]), ts) == [-1, ["a"]]
    assert value_to_json(RefType(0), {"x": 2, "tags": []}, ts) == [2, []]


def test_typed_values_out():
    assert typed_value_to_json(IDENTITY, ALICE) == {"__identity__": "0x" + ALICE.to_hex()}
    assert typed_value_to_json(option_type(U32), None) == {"none": []}
    assert typed_value_to_json(option_type(U32), 3) == {"some": 3}
    assert typed_value_to_json(COLOR, SumValue(0)) == {"red": []}
    assert typed_value_to_json(ProductType([("a", U32), ("b", STRING)]), (1, "x")) == {"a": 1, "b": "x"}
    assert typed_value_to_json(result_type(U32, STRING), Ok(1)) == {"ok": 1}


def test_values_in_accepts_every_documented_form():
    p = ProductType([("name", STRING), ("age", U32)])
    assert value_from_json(p, ["Bob", 3]) == ("Bob", 3)
    assert value_from_json(p, {"age": 3, "name": "Bob"}) == ("Bob", 3)
    opt = option_type(U32)
    for none in (None, {"none": []}, [1, []], {"1": []}):
        assert value_from_json(opt, none) is None
    for five in ({"some": 5}, [0, 5], {"0": 5}):
        assert value_from_json(opt, five) == 5
    assert value_from_json(option_type(option_type(U32)), {"some": None}) == Some(None)
    assert value_from_json(COLOR, {"rgb": [1, 2, 3]}) == SumValue(2, (1, 2, 3))
    assert value_from_json(COLOR, [1, []]) == SumValue(1)
    assert value_from_json(COLOR, "green") == SumValue(1)
    assert value_from_json(BYTES, "01ab") == b"\x01\xab"
    assert value_from_json(U256, "0xff") == 255
    assert value_from_json(U64, "18446744073709551615") == 2**64 - 1
    assert value_from_json(I64, -5.0) == -5
    for ident in (["0x" + ALICE.to_hex()], "0x" + ALICE.to_hex(), ALICE.to_hex(),
                  {"__identity__": "0x" + ALICE.to_hex()}):
        assert value_from_json(IDENTITY, ident) == ALICE
    assert value_from_json(TIMESTAMP, [1234]) == Timestamp(1234)
    assert value_from_json(TIMESTAMP, {"__timestamp_micros_since_unix_epoch__": 7}) == Timestamp(7)
    assert value_from_json(CONNECTION_ID, [9]) == ConnectionId.from_u128(9)
    assert value_from_json(SCHEDULE_AT, {"Interval": [10]}) == ScheduleAt.interval(TimeDuration(10))
    assert value_from_json(SCHEDULE_AT, [1, 20]) == ScheduleAt.time(Timestamp(20))
    assert value_from_json(result_type(U32, STRING), {"err": "x"}) == Err("x")
    assert value_from_json(UUID, "00000000-0000-0000-0000-000000000005") == Uuid(5)
    assert value_from_json(F64, 1) == 1.0


def test_values_in_errors_name_the_path():
    p = ProductType([("name", STRING), ("tags", ArrayType(U8))])
    with pytest.raises(SatsJsonError, match=r"expected a string.*\.name"):
        value_from_json(p, [3, []])
    with pytest.raises(SatsJsonError, match="expected 2 element"):
        value_from_json(p, ["a"])
    with pytest.raises(SatsJsonError, match="unknown field 'x'"):
        value_from_json(p, {"name": "a", "tags": "", "x": 1})
    with pytest.raises(SatsJsonError, match="missing field 'tags'"):
        value_from_json(p, {"name": "a"})
    with pytest.raises(SatsJsonError, match="out of range for U8"):
        value_from_json(U8, 256)
    with pytest.raises(SatsJsonError, match="expected an integer"):
        value_from_json(U32, True)
    with pytest.raises(SatsJsonError, match="expected an integer"):
        value_from_json(U32, 1.5)
    with pytest.raises(SatsJsonError, match="unknown variant 'blue'"):
        value_from_json(COLOR, {"blue": []})
    with pytest.raises(SatsJsonError, match="out of range"):
        value_from_json(COLOR, [7, []])
    with pytest.raises(SatsJsonError):
        value_from_json(BOOL, "true")
    with pytest.raises(SatsJsonError):
        value_from_json(BYTES, "zz")


def test_json_in_then_bsatn_then_json_out():
    ts = Typespace([ProductType([("who", IDENTITY), ("when", TIMESTAMP), ("color", COLOR),
                                 ("maybe", option_type(STRING)), ("blob", BYTES), ("big", U128)])])
    row = ["0x" + ALICE.to_hex(), [42], {"rgb": [1, 2, 3]}, None, "ff00", 2**100]
    value = value_from_json(RefType(0), row, ts)
    data = encode(RefType(0), value, ts)
    back = decode(RefType(0), data, ts)
    assert value_to_json(RefType(0), back, ts) == [["0x" + ALICE.to_hex()], [42], [2, [1, 2, 3]], [1, []], "ff00",
                                                   2**100]


def test_module_is_import_light():
    import subprocess
    import sys

    code = ("import sys; import spacetime_core.sats.satsjson; "
            "bad = [m for m in ('json', 'harness', 'aiohttp', 're', 'datetime') if m in sys.modules and m != 'json'];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": ":".join(sys.path)}).stdout.strip()
    assert "harness" not in out and "aiohttp" not in out
