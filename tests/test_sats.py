"""spacetime_core.sats: worked examples from bsatn.md, the type model, type encoding, value classes."""

import datetime
import pickle
import subprocess
import sys
import uuid as pyuuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_core.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I128,
    IDENTITY,
    NEVER,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    UUID,
    ArrayType,
    BsatnError,
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
    decode_all,
    decode_product_type,
    decode_sum_type,
    decode_type,
    decode_typespace,
    decoder,
    encode,
    encode_product_type,
    encode_sum_type,
    encode_type,
    encode_typespace,
    encoder,
    is_type_use,
    option_type,
    result_type,
)


def h(s):
    return bytes.fromhex(s.replace(' ', ''))


# ---------------------------------------------------------------------------
# bsatn.md section 8 / 4 / 7 worked examples, byte for byte
# ---------------------------------------------------------------------------

SECTION_8 = [
    (U32, 300, '2c 01 00 00'),
    (I16, -2, 'fe ff'),
    (BOOL, True, '01'),
    (F32, 1.5, '00 00 c0 3f'),
    (F64, -0.0, '00 00 00 00 00 00 00 80'),
    (I128, -1, 'ff' * 16),
    (U256, 1, '01' + '00' * 31),
    (STRING, 'hi', '02 00 00 00 68 69'),
    (ArrayType(U16), [1, 2], '02 00 00 00 01 00 02 00'),
    (option_type(I32), 5, '00 05 00 00 00'),
    (option_type(I32), None, '01'),
    (result_type(I32, STRING), Err('x'), '01 01 00 00 00 78'),
    (IDENTITY, Identity(1), '01' + '00' * 31),
    (CONNECTION_ID, ConnectionId(0x0102), '02 01' + '00' * 14),
    (TIMESTAMP, Timestamp(1_000_000), '40 42 0f 00 00 00 00 00'),
    (SCHEDULE_AT, ScheduleAt.interval(TimeDuration.from_seconds(1)), '00 40 42 0f 00 00 00 00 00'),
    (SCHEDULE_AT, ScheduleAt.time(Timestamp(1_700_000_000_000_000)), '01 00 40 1e 18 24 0a 06 00'),
    (UUID, Uuid.parse('01888d6e-5c00-7000-8000-000000000000'), '00 00 00 00 00 00 00 80 00 70 00 5c 6e 8d 88 01'),
    (ProductType([('id', U64), ('name', STRING)]), (0, 'ab'), '00 00 00 00 00 00 00 00 02 00 00 00 61 62'),
]


@pytest.mark.parametrize('t,v,hexs', SECTION_8, ids=[f'{t!r}={v!r}' for t, v, _ in SECTION_8])
def test_section8_examples(t, v, hexs):
    assert encode(t, v) == h(hexs)
    d = decode(t, h(hexs))
    assert d == v
    assert encode(t, d) == h(hexs)


def test_section4_product_example():
    t = ProductType([('a', U8), ('b', STRING), ('c', option_type(U32))])
    assert encode(t, (7, 'hi', 1)) == h('07 02 00 00 00 68 69 00 01 00 00 00')
    assert decode(t, h('07 02 00 00 00 68 69 00 01 00 00 00')) == (7, 'hi', 1)


def test_section4_sum_example():
    e = SumType([('A', UNIT), ('B', U16), ('C', ProductType([('x', BOOL)]))])
    assert encode(e, SumValue(0)) == h('00')
    assert encode(e, SumValue(1, 0x0102)) == h('01 02 01')
    assert encode(e, SumValue(2, (True,))) == h('02 01')
    assert decode(e, h('00')) == SumValue(0)
    assert decode(e, h('01 02 01')) == SumValue(1, 0x0102)
    assert decode(e, h('02 01')) == SumValue(2, (True,))


def test_bound_and_args_examples():
    bound = SumType([('Included', U32), ('Excluded', U32), ('Unbounded', UNIT)])
    assert encode(bound, SumValue(0, 5)) == h('00 05 00 00 00')
    assert encode(bound, SumValue(1, 5)) == h('01 05 00 00 00')
    assert encode(bound, SumValue(2)) == h('02')
    params = ProductType([('name', STRING), ('age', U8)])
    assert encode(params, ('ab', 3)) == h('02 00 00 00 61 62 03')


def test_result_ok_and_schedule_tags():
    t = result_type(I32, STRING)
    assert encode(t, Ok(5)) == h('00 05 00 00 00')
    assert decode(t, h('00 05 00 00 00')) == Ok(5)
    assert decode(t, h('01 01 00 00 00 78')) == Err('x')


def test_nested_option_uses_some():
    t = option_type(option_type(I32))
    assert encode(t, None) == h('01')
    assert encode(t, Some(None)) == h('00 01')
    assert encode(t, Some(5)) == h('00 00 05 00 00 00')
    assert encode(t, 5) == h('00 00 05 00 00 00')
    assert decode(t, h('01')) is None
    assert decode(t, h('00 01')) == Some(None)
    assert decode(t, h('00 00 05 00 00 00')) == Some(5)
    # Some() is also accepted for a plain option
    assert encode(option_type(I32), Some(5)) == h('00 05 00 00 00')


def test_bytes_and_unit():
    assert encode(BYTES, b'\x01\x02') == h('02 00 00 00 01 02')
    assert encode(BYTES, bytearray(b'\x01\x02')) == h('02 00 00 00 01 02')
    assert encode(BYTES, memoryview(b'\x01\x02')) == h('02 00 00 00 01 02')
    assert encode(BYTES, [1, 2]) == h('02 00 00 00 01 02')
    assert decode(BYTES, h('02 00 00 00 01 02')) == b'\x01\x02'
    assert encode(UNIT, ()) == b''
    assert decode(UNIT, b'') == ()
    assert encode(ArrayType(UNIT), [(), ()]) == h('02 00 00 00')


def test_decode_accepts_memoryview_and_bytearray_and_offsets():
    t = ProductType([('a', U8), ('b', STRING)])
    data = b'xx' + encode(t, (1, 'zz'))
    for buf in (data, bytearray(data), memoryview(data)):
        assert decoder(t)(buf, 2) == ((1, 'zz'), len(data))


def test_decode_all_concatenated_rows():
    t = ProductType([('a', U8), ('b', STRING)])
    rows = [(1, 'a'), (2, 'bb'), (3, '')]
    assert decode_all(t, b''.join(encode(t, r) for r in rows)) == rows


def test_trailing_bytes():
    with pytest.raises(BsatnError, match='trailing bytes'):
        decode(U8, b'\x01\x02')


def test_product_lenient_forms():
    t = ProductType([('a', U8), ('b', STRING)])
    ref = encode(t, (1, 'x'))
    assert encode(t, [1, 'x']) == ref
    assert encode(t, {'a': 1, 'b': 'x'}) == ref

    class Obj:
        a = 1
        b = 'x'
    assert encode(t, Obj()) == ref


# ---------------------------------------------------------------------------
# Type model
# ---------------------------------------------------------------------------

def test_structural_equality_and_hash():
    a = ProductType([('x', U8), ('y', option_type(STRING))])
    b = ProductType([('x', U8), ('y', option_type(STRING))])
    c = ProductType([('x', U8), ('z', option_type(STRING))])
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert ArrayType(U8) == BYTES
    assert RefType(3) == RefType(3) != RefType(4)
    assert {a: 1}[b] == 1
    assert U8 != I8 and U8 == U8


def test_predicates():
    assert option_type(U8).is_option() and option_type(U8).is_special()
    assert result_type(U8, STRING).is_result() and not result_type(U8, STRING).is_special()
    assert SCHEDULE_AT.is_schedule_at() and SCHEDULE_AT.is_special()
    for t in (IDENTITY, CONNECTION_ID, TIMESTAMP, TIME_DURATION, UUID):
        assert t.is_special() and t.is_product()
    assert IDENTITY.is_identity() and CONNECTION_ID.is_connection_id() and TIMESTAMP.is_timestamp()
    assert TIME_DURATION.is_time_duration() and UUID.is_uuid()
    assert UNIT.is_unit() and not UNIT.is_special()
    assert NEVER.is_never()
    assert BYTES.is_bytes() and not ArrayType(I8).is_bytes()
    assert not ProductType([('__identity__', U128)]).is_identity()
    assert not SumType([('none', UNIT), ('some', U8)]).is_option()
    assert not SumType([('some', U8), ('none', U8)]).is_option()
    assert U8.is_integer() and F32.is_float() and STRING.is_string() and BOOL.is_bool()
    assert RefType(0).has_refs() and ArrayType(RefType(0)).has_refs() and not ArrayType(U8).has_refs()


def test_is_type_use():
    assert is_type_use(U8) and is_type_use(ArrayType(option_type(IDENTITY)))
    assert is_type_use(result_type(RefType(1), STRING)) and is_type_use(UNIT) and is_type_use(NEVER)
    assert not is_type_use(ProductType([('a', U8)]))
    assert not is_type_use(option_type(SumType([('a', UNIT)])))


def test_repr():
    assert repr(U8) == 'U8'
    assert repr(option_type(STRING)) == 'Option<String>'
    assert repr(result_type(U8, STRING)) == 'Result<U8, String>'
    assert repr(ArrayType(RefType(2))) == 'Array<Ref(2)>'
    assert repr(IDENTITY) == 'Identity'
    assert repr(ProductType([('a', U8), (None, BOOL)])) == 'Product{a: U8, Bool}'
    assert repr(UNIT) == '()'


def test_types_pickle():
    t = ProductType([('a', ArrayType(option_type(RefType(1)))), (None, SCHEDULE_AT)])
    assert pickle.loads(pickle.dumps(t)) == t
    assert pickle.loads(pickle.dumps(U8)) is U8


def test_constructor_validation():
    with pytest.raises(TypeError):
        ProductType([('a', 5)])
    with pytest.raises(TypeError):
        ProductType([(3, U8)])
    with pytest.raises(TypeError):
        ArrayType(int)
    with pytest.raises(TypeError):
        RefType(-1)
    with pytest.raises(TypeError):
        SumType([(f'v{i}', UNIT) for i in range(257)])


def test_typespace_resolve_and_errors():
    ts = Typespace()
    r = ts.reserve()
    ts.set(r, ProductType([('a', U8)]))
    r2 = ts.add(ArrayType(r))
    assert ts.resolve(r) == ProductType([('a', U8)])
    assert ts[r2] == ArrayType(r)
    with pytest.raises(BsatnError, match='dangling'):
        ts.resolve(RefType(9))
    with pytest.raises(BsatnError, match='no typespace'):
        encoder(ArrayType(RefType(0)))
    cyc = Typespace([RefType(1), RefType(0)])
    with pytest.raises(BsatnError, match='cyclic'):
        cyc.resolve(RefType(0))


def test_recursive_type_via_refs():
    # List = Sum[nil: (), cons: Product[head: I32, tail: Ref(0)]]
    ts = Typespace([SumType([('nil', UNIT), ('cons', ProductType([('head', I32), ('tail', RefType(0))]))])])
    lst = SumValue(1, (1, SumValue(1, (2, SumValue(0)))))
    data = encode(RefType(0), lst, ts)
    assert data == h('01 01 00 00 00 01 02 00 00 00 00')
    assert decode(RefType(0), data, ts) == lst
    tree = ProductType([('v', U8), ('kids', ArrayType(RefType(0)))])
    ts2 = Typespace([tree])
    v = (1, [(2, []), (3, [(4, [])])])
    assert decode(tree, encode(tree, v, ts2), ts2) == v


# ---------------------------------------------------------------------------
# Type encoding (bsatn.md section 5)
# ---------------------------------------------------------------------------

SECTION_5 = [
    (U64, '0d'),
    (BYTES, '03 07'),
    (RefType(3), '00 03 00 00 00'),
    (UNIT, '02 00 00 00 00'),
    (IDENTITY, '02 01 00 00 00 00 0c 00 00 00' + b'__identity__'.hex() + '11'),
    (option_type(STRING), '01 02 00 00 00 00 04 00 00 00 73 6f 6d 65 04 00 04 00 00 00 6e 6f 6e 65 02 00 00 00 00'),
]


@pytest.mark.parametrize('t,hexs', SECTION_5, ids=[repr(t) for t, _ in SECTION_5])
def test_section5_type_encoding(t, hexs):
    assert encode_type(t) == h(hexs)
    assert decode_type(h(hexs)) == (t, len(h(hexs)))


def test_bare_product_and_sum_and_typespace_encoding():
    p = ProductType([('name', STRING), (None, U8)])
    b = encode_product_type(p)
    assert b == h('02 00 00 00 00 04 00 00 00') + b'name' + h('04 01 07')
    assert decode_product_type(b) == (p, len(b))
    s = SumType([('a', UNIT)])
    bs = encode_sum_type(s)
    assert decode_sum_type(bs) == (s, len(bs))
    ts = Typespace([p, s, ArrayType(RefType(0))])
    bt = encode_typespace(ts)
    ts2, off = decode_typespace(bt)
    assert off == len(bt) and ts2.types == ts.types
    with pytest.raises(TypeError):
        encode_product_type(s)


def test_decode_type_errors():
    with pytest.raises(BsatnError, match='invalid AlgebraicType tag 20'):
        decode_type(b'\x14')
    with pytest.raises(BsatnError, match='end of input'):
        decode_type(b'\x02\x01\x00')
    with pytest.raises(BsatnError, match='Option tag'):
        decode_type(h('02 01 00 00 00 05 04'))
    enc = encode_type(option_type(STRING))
    for cut in range(len(enc)):
        with pytest.raises(BsatnError):
            decode_type(enc[:cut])


# ---------------------------------------------------------------------------
# Value classes
# ---------------------------------------------------------------------------

def test_identity_hex_display_is_big_endian():
    ident = Identity.from_bytes(bytes(range(1, 33)))      # LE bytes 01..20
    assert ident.to_hex() == bytes(range(32, 0, -1)).hex()  # display 201f1e...0201
    assert str(ident) == ident.to_hex()
    assert Identity.from_hex(ident.to_hex()) == ident
    assert Identity.from_hex('0x' + ident.to_hex()) == ident
    assert ident.to_bytes() == bytes(range(1, 33))
    assert ident.to_be_bytes() == bytes(range(32, 0, -1))
    assert ident.to_u256() == int.from_bytes(bytes(range(1, 33)), 'little')
    assert Identity(ident.to_u256()) == ident == Identity(ident.to_hex()) == Identity(ident.to_bytes())
    assert Identity.ZERO.to_hex() == '0' * 64 and Identity.ZERO.is_zero()
    assert encode(IDENTITY, ident) == bytes(range(1, 33))
    assert ident.to_abbreviated_hex() == ident.to_hex()[:16]
    assert repr(ident).startswith("Identity('201f")


def test_identity_ordering_by_integer_value():
    a = Identity(1)
    b = Identity(256)     # LE bytes 00 01 ..: bytewise LE would sort b < a
    assert a < b and b > a and a <= a and b >= a
    assert sorted([Identity(x) for x in (5, 1 << 200, 3, 1 << 8)]) == [Identity(x) for x in (3, 5, 1 << 8, 1 << 200)]
    assert len({Identity(3), Identity(3)}) == 1


def test_identity_validation_and_immutability():
    with pytest.raises(ValueError):
        Identity.from_hex('abc')
    with pytest.raises(OverflowError):
        Identity(1 << 256)
    with pytest.raises(ValueError):
        Identity(b'short')
    with pytest.raises(AttributeError):
        Identity(1).x = 1
    assert pickle.loads(pickle.dumps(Identity(7))) == Identity(7)


def test_connection_id():
    c = ConnectionId.from_be_bytes(bytes([0xff] + list(range(1, 16))))
    assert c.to_hex().startswith('ff01')
    assert ConnectionId.from_hex(c.to_hex()) == c
    assert ConnectionId.ZERO.is_zero() and not c.is_zero()
    assert ConnectionId.ZERO.none_if_zero() is None and c.none_if_zero() is c
    assert ConnectionId(1) < ConnectionId(256)
    assert c.to_u128() == int(c.to_hex(), 16)
    assert str(ConnectionId.ZERO) == '0' * 32
    assert Identity(1) != ConnectionId(1)


KNOWN_INSTANTS = [
    (0, '1970-01-01T00:00:00.000000+00:00'),
    (9_876_543_210, '1970-01-01T02:44:36.543210+00:00'),
    (1_767_225_600_000_000, '2026-01-01T00:00:00.000000+00:00'),
    (1_704_067_200_000_000, '2024-01-01T00:00:00.000000+00:00'),
    (1_709_164_800_000_000, '2024-02-29T00:00:00.000000+00:00'),
    (951_782_400_000_000, '2000-02-29T00:00:00.000000+00:00'),
    (-1, '1969-12-31T23:59:59.999999+00:00'),
    (-1_000_000, '1969-12-31T23:59:59.000000+00:00'),
    (-2_208_988_800_000_000, '1900-01-01T00:00:00.000000+00:00'),
    (-62_135_596_800_000_000, '0001-01-01T00:00:00.000000+00:00'),
    (253_402_300_799_999_999, '9999-12-31T23:59:59.999999+00:00'),
]


@pytest.mark.parametrize('micros,text', KNOWN_INSTANTS)
def test_timestamp_iso_known(micros, text):
    ts = Timestamp(micros)
    assert str(ts) == text == ts.isoformat() == ts.to_rfc3339()
    assert Timestamp.from_iso(text) == ts


def test_timestamp_iso_outside_4_digit_years():
    assert str(Timestamp(253_402_300_800_000_000)) == '+10000-01-01T00:00:00.000000+00:00'
    assert str(Timestamp(-62_167_219_200_000_000 - 86_400_000_000)).startswith('-0001-12-31T')
    assert str(Timestamp(-(1 << 63))).endswith('+00:00')
    assert str(Timestamp((1 << 63) - 1)).endswith('+00:00')


@given(st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999))
def test_timestamp_iso_matches_datetime(micros):
    dt = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(microseconds=micros)
    assert str(Timestamp(micros)) == dt.isoformat(timespec='microseconds')
    assert Timestamp.from_iso(str(Timestamp(micros))).micros == micros


def test_timestamp_api():
    t = Timestamp.from_seconds(1.5)
    assert t.micros == 1_500_000 == t.micros_since_unix_epoch
    assert t.to_seconds() == 1.5 and t.to_millis() == 1500
    assert Timestamp.from_millis(3).micros == 3000
    d = TimeDuration.from_millis(250)
    assert t + d == Timestamp(1_750_000) == d + t
    assert t - d == Timestamp(1_250_000)
    assert (t + d) - t == d and (t + d).since(t) == d and t.duration_since(t) == TimeDuration(0)
    assert Timestamp(1) < Timestamp(2) and sorted([Timestamp(3), Timestamp(-1)]) == [Timestamp(-1), Timestamp(3)]
    assert Timestamp.UNIX_EPOCH == Timestamp(0)
    assert Timestamp.from_iso('2024-01-01T01:00:00+01:00') == Timestamp.from_iso('2024-01-01T00:00:00Z')
    with pytest.raises(OverflowError):
        Timestamp(1 << 63)
    with pytest.raises(TypeError):
        Timestamp(1.5)
    with pytest.raises(ValueError):
        Timestamp.from_iso('yesterday')
    with pytest.raises(AttributeError):
        t.micros = 3
    assert hash(Timestamp(5)) == hash(Timestamp(5))
    assert repr(Timestamp(5)) == 'Timestamp(5)'


def test_time_duration():
    assert str(TimeDuration(-67_419_000_000_003)) == '-67419000.000003'
    assert str(TimeDuration(1_500_000)) == '+1.500000'
    assert str(TimeDuration(0)) == '+0.000000'
    d = TimeDuration.from_seconds(2)
    assert d.micros == 2_000_000 and d.to_seconds() == 2.0 and d.to_millis() == 2000
    assert TimeDuration(-1500).to_millis() == -1
    assert d + TimeDuration(1) == TimeDuration(2_000_001) and d - d == TimeDuration.ZERO
    assert -d == TimeDuration(-2_000_000) and abs(-d) == d and d * 2 == 2 * d == TimeDuration(4_000_000)
    assert d // 2 == TimeDuration(1_000_000) and d // TimeDuration(500_000) == 4
    assert TimeDuration(-1) < TimeDuration(0) < TimeDuration(1)
    assert not TimeDuration(0) and TimeDuration(1)
    assert TimeDuration(5) != Timestamp(5)


def test_uuid_text_and_bytes():
    s = '01020304-0506-0708-090a-0b0c0d0e0f10'
    u = Uuid.parse(s)
    assert u.to_u128() == 0x0102030405060708090A0B0C0D0E0F10
    assert str(u) == s and repr(u) == f"Uuid('{s}')"
    assert encode(UUID, u) == bytes(range(16, 0, -1))
    assert u.to_bytes() == bytes(range(1, 17)) and Uuid.from_bytes(u.to_bytes()) == u
    for form in (s.upper(), s.replace('-', ''), '{' + s + '}', 'urn:uuid:' + s):
        assert Uuid.parse(form) == u
    assert str(Uuid.NIL) == '00000000-0000-0000-0000-000000000000'
    assert str(Uuid.MAX) == 'ffffffff-ffff-ffff-ffff-ffffffffffff'
    for bad in ('', '0102', s[:-1] + 'g', s.replace('-', '_')):
        with pytest.raises(ValueError):
            Uuid.parse(bad)
    assert Uuid(s) == u == Uuid(u.to_u128())


@given(st.binary(min_size=16, max_size=16))
def test_uuid_matches_python_uuid(b):
    ref = pyuuid.UUID(bytes=b)
    u = Uuid.from_bytes(b)
    assert str(u) == str(ref)
    assert Uuid.parse(str(ref)) == u
    assert u.to_u128() == ref.int
    v4 = Uuid.from_random_bytes(b)
    assert v4.version() == 4 and pyuuid.UUID(str(v4)).version == 4
    assert pyuuid.UUID(str(v4)).variant == pyuuid.RFC_4122


def test_uuid_v4_and_v7_upstream_examples():
    assert str(Uuid.from_random_bytes(bytes(16))) == '00000000-0000-4000-8000-000000000000'
    now = Timestamp(1_686_000_000_000)
    assert str(Uuid.v7(now, 1, bytes(4))) == '0000647e-5180-7000-8000-000200000000'
    u = Uuid.v7(now, 0, bytes(4))
    assert u.version() == 7 and u.counter_v7() == 0
    with pytest.raises(ValueError):
        Uuid.v7(Timestamp(-1), 0, bytes(4))
    with pytest.raises(ValueError):
        Uuid.v7(now, 0, bytes(3))


@given(st.integers(min_value=0, max_value=(1 << 47)), st.integers(min_value=0, max_value=(1 << 31) - 2),
       st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
def test_uuid_v7_ordering(micros, counter, r1, r2):
    a = Uuid.v7(Timestamp(micros), counter, r1)
    b = Uuid.v7(Timestamp(micros), counter + 1, r2)
    assert a < b and str(a) < str(b)
    assert a.counter_v7() == counter and b.counter_v7() == counter + 1
    p = pyuuid.UUID(str(a))
    assert p.version == 7 and p.variant == pyuuid.RFC_4122
    assert int.from_bytes(a.to_bytes()[:6], 'big') == micros // 1000
    later = Uuid.v7(Timestamp(micros + 1000), 0, r1)
    assert b < later


def test_schedule_at():
    i = ScheduleAt.interval(1_000_000)
    t = ScheduleAt.time(Timestamp(5))
    assert i.tag == 'Interval' and i.value == TimeDuration(1_000_000) and i.is_interval()
    assert t.tag == 'Time' and t.value == Timestamp(5) and t.is_time()
    assert ScheduleAt.interval(TimeDuration(1_000_000)) == i and hash(i) == hash(ScheduleAt.interval(1_000_000))
    assert i < t
    assert repr(t) == 'ScheduleAt.time(Timestamp(5))'
    match t:
        case ScheduleAt(tag='Time', value=v):
            assert v == Timestamp(5)
    with pytest.raises(ValueError):
        ScheduleAt('Never', 1)
    # a timedelta says its unit; a bare int is microseconds (upstream's TS SDK), a float is refused
    from datetime import timedelta
    assert ScheduleAt.interval(timedelta(minutes=1, microseconds=5)).value == TimeDuration(60_000_005)
    assert TimeDuration(timedelta(days=-1)) == TimeDuration.from_seconds(-86_400)
    assert Timestamp(5) + timedelta(milliseconds=1) == Timestamp(1005) == timedelta(milliseconds=1) + Timestamp(5)
    assert Timestamp(1005) - timedelta(milliseconds=1) == Timestamp(5)
    with pytest.raises(TypeError, match="int number of microseconds"):
        ScheduleAt.interval(1.5)


def test_some_ok_err_sumvalue_values():
    assert Some(1) == Some(1) != Some(2) and Ok(1) != Err(1) and Ok(1) != Some(1)
    assert Ok(5) < Err(0) and Err(1) < Err(2) and Some(1) < Some(2)
    assert len({Ok(1), Ok(1), Err(1)}) == 2
    assert repr(Ok(1)) == 'Ok(1)' and repr(SumValue(2)) == 'SumValue(2)'
    assert repr(SumValue(1, 'x')) == "SumValue(1, 'x')"
    assert SumValue(0, 9) < SumValue(1) and SumValue(1, 2) < SumValue(1, 3)
    with pytest.raises(ValueError):
        SumValue(256)
    with pytest.raises(AttributeError):
        Ok(1).value = 2
    assert Ok(1).is_ok() and Err(1).is_err()
    match Ok(3):
        case Ok(v):
            assert v == 3


def test_only_allowed_stdlib_imports():
    code = ('import sys; before = set(sys.modules); import spacetime_core.sats; '
            'print(" ".join(sorted(set(sys.modules) - before)))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         cwd=str(__import__('pathlib').Path(__file__).resolve().parent.parent)).stdout.split()
    extra = [m for m in out if not m.startswith('spacetime_core') and m not in ('struct', '_struct', 'math')]
    assert extra == []
