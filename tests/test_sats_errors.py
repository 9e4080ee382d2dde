"""spacetime_core.sats: encode/decode error cases and their messages."""

import pytest

from spacetime_core.sats import (
    BOOL,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
    NEVER,
    SCHEDULE_AT,
    STRING,
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
    Identity,
    Ok,
    ProductType,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    decode,
    decoder,
    encode,
    option_type,
    product,
    result_type,
    u8,
)
from spacetime_core.sats.types import INT_RANGES

INTS = [I8, U8, I16, U16, I32, U32, I64, U64, I128, U128, I256, U256]


def test_bsatn_error_is_value_error():
    assert issubclass(BsatnError, ValueError)


@pytest.mark.parametrize('t', INTS, ids=repr)
def test_out_of_range_ints(t):
    lo, hi = INT_RANGES[t.tag]
    for bad in (lo - 1, hi + 1):
        with pytest.raises(BsatnError, match=rf'expected {t!r} \(int in {lo}\.\.{hi}\).*out of range'):
            encode(t, bad)
    # same inside a product (inlined fast path) and an array
    p = ProductType([('a', U8), ('n', t)])
    with pytest.raises(BsatnError, match=r'at Product\{a: U8, n: .*\}\.n: expected'):
        encode(p, (1, hi + 1))
    with pytest.raises(BsatnError, match=r'\[1\]: expected'):
        encode(ArrayType(t), [lo, hi + 1])


def test_300_for_u8():
    with pytest.raises(BsatnError) as ei:
        encode(U8, 300)
    assert 'expected U8 (int in 0..255), got 300 (int)' in str(ei.value)


@pytest.mark.parametrize('t,bad', [
    (U32, 'x'), (U32, 1.5), (U32, None), (I64, b'1'),
    (F64, 'x'), (F32, None), (BOOL, 1), (BOOL, 0), (BOOL, None), (BOOL, 'true'),
    (STRING, 5), (STRING, b'x'), (STRING, None),
    (ArrayType(U8), 'str'), (ArrayType(U8), 5), (ArrayType(U32), 'abc'), (ArrayType(U32), {1: 2}),
    (ArrayType(BOOL), [1, 0]), (ArrayType(STRING), ['a', 1]),
    (IDENTITY, ConnectionId(1)), (IDENTITY, 5), (IDENTITY, '00' * 32),
    (TIMESTAMP, TimeDuration(1)), (TIMESTAMP, 5), (UUID, 5),
    (SCHEDULE_AT, 5), (option_type(U8), 'x'), (result_type(U8, STRING), 5),
    (ProductType([('a', U8), ('b', STRING)]), (1,)), (ProductType([('a', U8), ('b', STRING)]), 'ab'),
    (ProductType([('a', U8), ('b', STRING)]), {'a': 1}), (ProductType([('a', U8), ('b', STRING)]), None),
    (SumType([('x', U8), ('y', UNIT)]), 5), (SumType([('x', U8), ('y', UNIT)]), SumValue(2)),
    (UNIT, 5), (NEVER, None),
], ids=lambda x: repr(x)[:30])
def test_wrong_python_type(t, bad):
    with pytest.raises(BsatnError, match='BSATN encode error at .*expected'):
        encode(t, bad)


def test_string_with_surrogate():
    with pytest.raises(BsatnError, match='UTF-8'):
        encode(STRING, '\udc80')
    with pytest.raises(BsatnError, match='UTF-8'):
        encode(ProductType([('s', STRING), ('n', U8)]), ('\udc80', 1))


def test_bad_bool_byte():
    with pytest.raises(BsatnError, match=r'offset 0 .*invalid Bool byte 0x02'):
        decode(BOOL, b'\x02')
    p = ProductType([('a', U32), ('b', BOOL)])
    with pytest.raises(BsatnError, match=r'offset 4 \(Product.*\.b\): invalid Bool byte 0xff'):
        decode(p, b'\x00\x00\x00\x00\xff')
    with pytest.raises(BsatnError, match='invalid Bool byte'):
        decode(ArrayType(BOOL), b'\x02\x00\x00\x00\x01\x07')


def test_bad_sum_tags():
    with pytest.raises(BsatnError, match=r'invalid sum tag 2 for Option<U8>'):
        decode(option_type(U8), b'\x02')
    with pytest.raises(BsatnError, match=r'invalid sum tag 5 .*3 variants'):
        decode(SumType([('a', UNIT), ('b', U8), ('c', STRING)]), b'\x05')
    with pytest.raises(BsatnError, match='invalid sum tag 2'):
        decode(result_type(U8, U8), b'\x02\x00')
    with pytest.raises(BsatnError, match='invalid sum tag 7 for ScheduleAt'):
        decode(SCHEDULE_AT, b'\x07' + bytes(8))
    p = ProductType([('a', U8), ('o', option_type(STRING))])
    with pytest.raises(BsatnError, match=r'offset 1 .*\.o\): invalid sum tag 9'):
        decode(p, b'\x01\x09')
    with pytest.raises(BsatnError, match='never'):
        decode(NEVER, b'\x00')


def test_invalid_utf8():
    with pytest.raises(BsatnError, match=r'offset 4 .*invalid UTF-8'):
        decode(STRING, b'\x02\x00\x00\x00\xc3\x28')
    p = ProductType([('a', U16), ('s', STRING)])
    with pytest.raises(BsatnError, match=r'\.s\): invalid UTF-8'):
        decode(p, b'\x01\x00\x01\x00\x00\x00\xff')
    with pytest.raises(BsatnError, match='invalid UTF-8'):
        decode(STRING, b'\x03\x00\x00\x00\xed\xa0\x80')   # encoded surrogate (CESU) is rejected


def test_truncated_messages_name_type_and_offset():
    p = ProductType([('id', U64), ('name', STRING), ('who', IDENTITY)])
    data = encode(p, (1, 'abc', Identity(9)))
    with pytest.raises(BsatnError) as ei:
        decode(p, data[:5])
    assert 'offset 0' in str(ei.value) and 'U64' in str(ei.value) and 'need 8 bytes, 5 left' in str(ei.value)
    with pytest.raises(BsatnError) as ei:
        decode(p, data[:14])
    assert 'offset 12' in str(ei.value) and 'String bytes' in str(ei.value)
    with pytest.raises(BsatnError, match=r'offset 15 .*\.who\).*Identity'):
        decode(p, data[:20])
    with pytest.raises(BsatnError, match='end of input'):
        decode(ArrayType(U32), b'\x05\x00\x00\x00\x01\x00\x00\x00')
    with pytest.raises(BsatnError, match='end of input'):
        decode(ArrayType(U8), b'\x05\x00\x00\x00\x01')
    with pytest.raises(BsatnError, match='end of input'):
        decode(U8, b'')


def test_decoder_errors_from_offset():
    dec = decoder(U32)
    with pytest.raises(BsatnError, match='offset 3'):
        dec(b'\x00\x00\x00\x01\x02', 3)


def test_bound_product_errors_name_class_and_field():
    @product
    class Person:
        name: str
        age: u8

    t = Person.__sats_type__
    with pytest.raises(BsatnError, match=r'at Person\.age: expected U8'):
        encode(t, Person('x', 300))
    with pytest.raises(BsatnError, match=r'at Person\.name: expected String'):
        encode(t, Person(5, 1))
    with pytest.raises(BsatnError, match=r'Person \(object with attribute'):
        encode(t, object())
    with pytest.raises(BsatnError, match=r'offset 4 \(Person\.name\)'):
        decode(t, b'\x05\x00\x00\x00ab')


def test_sum_value_and_result_errors():
    with pytest.raises(BsatnError):
        encode(result_type(U8, U8), Ok(300))
    with pytest.raises(BsatnError, match=r'\.ok: expected U8'):
        encode(result_type(U8, U8), Ok('x'))


def test_nan_and_inf_encode_fine():
    assert decode(F64, encode(F64, float('inf'))) == float('inf')
    assert decode(F32, encode(F32, float('-inf'))) == float('-inf')


def test_timestamp_inside_product_wrong_type():
    p = ProductType([('t', TIMESTAMP), ('n', U8)])
    with pytest.raises(BsatnError, match=r'\.t: expected Timestamp, got 5'):
        encode(p, (5, 1))
    assert decode(p, encode(p, (Timestamp(3), 1))) == (Timestamp(3), 1)
