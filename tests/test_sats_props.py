"""spacetime_core.sats: property tests over random types and values.

* compiled codecs agree with the reference codec and round-trip,
* every strict prefix of an encoding fails to decode with BsatnError,
* sort_key ordering equals an independent implementation of bsatn.md section 6.
"""

import math
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetime_core.sats import (
    BOOL,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
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
    decoder,
    encode,
    encoder,
    identity_key,
    option_type,
    reference,
    result_type,
    sort_key,
)
from spacetime_core.sats.types import INT_RANGES

INTS = [I8, U8, I16, U16, I32, U32, I64, U64, I128, U128, I256, U256]
LEAVES = INTS + [BOOL, F32, F64, STRING, IDENTITY, CONNECTION_ID, TIMESTAMP, TIME_DURATION, UUID,
                 SCHEDULE_AT, UNIT, ArrayType(U8)]
NAMES = st.sampled_from(['a', 'b', 'c', 'id', 'name', 'x_1'])


def _elements(children, min_size):
    return st.lists(st.tuples(st.none() | NAMES, children), min_size=min_size, max_size=4)


types = st.recursive(
    st.sampled_from(LEAVES),
    lambda children: st.one_of(
        children.map(ArrayType),
        children.map(option_type),
        st.tuples(children, children).map(lambda p: result_type(*p)),
        _elements(children, 0).map(ProductType),
        _elements(children, 1).map(SumType),
    ),
    max_leaves=8,
)

# A recursive type through the typespace: Tree = Product[v: I16, kids: Array<Ref(0)>, tag: Option<Ref(1)>],
# Ref(1) = Sum[leaf: (), node: Ref(0)]
TREE_TS = Typespace([
    ProductType([('v', I16), ('kids', ArrayType(RefType(0))), ('tag', option_type(RefType(1)))]),
    SumType([('leaf', UNIT), ('node', RefType(0))]),
])


def values(t, ts=None):
    """Strategy for canonical Python values of type t (what decode produces)."""
    if t.tag == 0:
        return st.deferred(lambda: values(ts.resolve(t), ts))
    if t.is_integer():
        lo, hi = INT_RANGES[t.tag]
        return st.integers(lo, hi)
    if t == BOOL:
        return st.booleans()
    if t == F32:
        return st.floats(width=32, allow_nan=False)
    if t == F64:
        return st.floats(allow_nan=False)
    if t == STRING:
        return st.text(max_size=8)
    sp = t.special
    if sp == 'identity':
        return st.binary(min_size=32, max_size=32).map(Identity.from_bytes)
    if sp == 'connection_id':
        return st.binary(min_size=16, max_size=16).map(ConnectionId.from_bytes)
    if sp == 'timestamp':
        return st.integers(-(1 << 63), (1 << 63) - 1).map(Timestamp)
    if sp == 'time_duration':
        return st.integers(-(1 << 63), (1 << 63) - 1).map(TimeDuration)
    if sp == 'uuid':
        return st.integers(0, (1 << 128) - 1).map(Uuid)
    if sp == 'schedule_at':
        return st.builds(ScheduleAt, st.sampled_from(['Interval', 'Time']), st.integers(-(1 << 63), (1 << 63) - 1))
    if sp == 'unit':
        return st.just(())
    if t.is_array():
        et = ts.resolve(t.elem) if t.elem.tag == 0 else t.elem
        if et == U8:
            return st.binary(max_size=8)
        return st.lists(values(t.elem, ts), max_size=3)
    if sp == 'option':
        inner = t.elements[0][1]
        rin = ts.resolve(inner) if inner.tag == 0 else inner
        if rin.is_option():
            return st.none() | values(inner, ts).map(Some)
        return st.none() | values(inner, ts)
    if sp == 'result':
        return values(t.elements[0][1], ts).map(Ok) | values(t.elements[1][1], ts).map(Err)
    if t.is_product():
        return st.tuples(*[values(et, ts) for _, et in t.elements])
    if t.is_sum():
        alts = []
        for i, (_, vt) in enumerate(t.elements):
            rvt = ts.resolve(vt) if vt.tag == 0 else vt
            if rvt.is_unit():
                alts.append(st.just(SumValue(i)))
            else:
                alts.append(values(vt, ts).map(lambda v, i=i: SumValue(i, v)))
        return st.one_of(alts)
    raise AssertionError(t)


typed_values = types.flatmap(lambda t: st.tuples(st.just(t), values(t)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(typed_values)
def test_roundtrip_and_agreement_with_reference(tv):
    t, v = tv
    data = encode(t, v)
    assert data == reference.encode(t, v)
    back = decode(t, data)
    assert back == v
    assert reference.decode(t, data) == back
    assert encode(t, back) == data
    # decoding from an offset inside a larger memoryview
    buf = memoryview(b'\xaa' + data + b'\xbb')
    assert decoder(t)(buf, 1) == (v, 1 + len(data))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(typed_values)
def test_every_truncation_fails(tv):
    t, v = tv
    data = encode(t, v)
    for cut in range(len(data)):
        try:
            decode(t, data[:cut])
        except BsatnError:
            pass
        else:
            raise AssertionError(f'prefix {cut} of {len(data)} decoded for {t!r}')
    if data:
        try:
            decode(t, data + b'\x00')
        except BsatnError as e:
            assert 'trailing' in str(e)
        else:
            raise AssertionError('trailing byte accepted')


TREE = st.deferred(lambda: st.tuples(st.integers(-(1 << 15), (1 << 15) - 1), st.lists(TREE, max_size=2),
                                     st.none() | st.just(SumValue(0)) | TREE.map(lambda x: SumValue(1, x))))


@settings(max_examples=100)
@given(TREE)
def test_recursive_ref_type_roundtrip(v):
    t = RefType(0)
    data = encode(t, v, TREE_TS)
    assert data == reference.encode(t, v, TREE_TS)
    assert decode(t, data, TREE_TS) == v
    for cut in range(len(data)):
        try:
            decode(t, data[:cut], TREE_TS)
        except BsatnError:
            continue
        raise AssertionError('truncation accepted')


def _same_float(x, y):
    return (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))


@given(st.floats())
def test_f64_bit_exact(x):
    assert encode(F64, x) == struct.pack('<d', x)
    assert _same_float(decode(F64, encode(F64, x)), x)


@given(st.floats(width=32))
def test_f32_roundtrip(x):
    assert encode(F32, x) == struct.pack('<f', x)
    assert _same_float(decode(F32, encode(F32, x)), x)


def test_f32_out_of_range_rejected():
    try:
        encode(F32, 1e39)
    except BsatnError as e:
        assert 'F32' in str(e)
    else:
        raise AssertionError('1e39 encoded as F32')
    assert decode(F32, encode(F32, math.inf)) == math.inf


# ---------------------------------------------------------------------------
# sort_key vs an independent implementation of the value order (bsatn.md section 6)
# ---------------------------------------------------------------------------

def _cmp(a, b):
    return (a > b) - (a < b)


def spec_cmp(t, a, b, ts=None):
    """Three-way comparison following bsatn.md section 6, on canonical values."""
    if t.tag == 0:
        t = ts.resolve(t)
    if t.is_integer() or t == BOOL:
        return _cmp(a, b)
    if t == STRING:
        return _cmp(a.encode(), b.encode())
    if t in (F32, F64):
        an, bn = math.isnan(a), math.isnan(b)
        if an or bn:
            return _cmp(an, bn)
        return _cmp(a, b)
    sp = t.special
    if sp == 'identity':
        return _cmp(a.to_u256(), b.to_u256())
    if sp == 'connection_id':
        return _cmp(a.to_u128(), b.to_u128())
    if sp in ('timestamp', 'time_duration'):
        return _cmp(a.micros, b.micros)
    if sp == 'uuid':
        return _cmp(a.to_u128(), b.to_u128())
    if sp == 'schedule_at':
        return _cmp(a.tag == 'Time', b.tag == 'Time') or _cmp(a.value.micros, b.value.micros)
    if sp == 'unit':
        return 0
    if t.is_array():
        for x, y in zip(a, b):
            c = spec_cmp(t.elem, x, y, ts)
            if c:
                return c
        return _cmp(len(a), len(b))
    if sp == 'option':
        ta, tb = (1 if a is None else 0), (1 if b is None else 0)
        if ta != tb or ta == 1:
            return _cmp(ta, tb)
        if isinstance(a, Some):
            a, b = a.value, b.value
        return spec_cmp(t.elements[0][1], a, b, ts)
    if sp == 'result':
        ta, tb = int(isinstance(a, Err)), int(isinstance(b, Err))
        return _cmp(ta, tb) or spec_cmp(t.elements[ta][1], a.value, b.value, ts)
    if t.is_product():
        for (_, et), x, y in zip(t.elements, a, b):
            c = spec_cmp(et, x, y, ts)
            if c:
                return c
        return 0
    if t.is_sum():
        if a.tag != b.tag:
            return _cmp(a.tag, b.tag)
        vt = t.elements[a.tag][1]
        rvt = ts.resolve(vt) if vt.tag == 0 else vt
        if rvt.is_unit():
            return 0
        return spec_cmp(vt, a.value, b.value, ts)
    raise AssertionError(t)


def _spec_values(t):
    nan_floats = st.floats(width=32) if t == F32 else st.floats()
    if t in (F32, F64):
        return nan_floats | st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf])
    return values(t)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(types.flatmap(lambda t: st.tuples(st.just(t), values(t), values(t))))
def test_sort_key_matches_spec_order(tvv):
    t, a, b = tvv
    k = sort_key(t)
    c = spec_cmp(t, a, b)
    ka, kb = k(a), k(b)
    assert _cmp(ka, kb) == c
    assert (ka == kb) == (c == 0)
    if c == 0:
        assert hash(ka) == hash(kb)


@given(st.sampled_from([F32, F64]).flatmap(lambda t: st.tuples(st.just(t), _spec_values(t), _spec_values(t))))
def test_sort_key_floats_total_order(tvv):
    t, a, b = tvv
    k = sort_key(t)
    assert _cmp(k(a), k(b)) == spec_cmp(t, a, b)


@given(TREE, TREE)
def test_sort_key_recursive(a, b):
    k = sort_key(RefType(0), TREE_TS)
    assert _cmp(k(a), k(b)) == spec_cmp(RefType(0), a, b, TREE_TS)


def test_sort_key_identity_for_natural_types():
    for t in INTS + [BOOL, STRING, ArrayType(U8), ProductType([('a', U32), ('b', STRING)])]:
        assert sort_key(t) is identity_key
    assert sort_key(F64) is not identity_key
    assert sort_key(option_type(U8)) is not identity_key
    assert sort_key(ArrayType(U32)) is tuple


def test_sort_key_examples():
    k = sort_key(option_type(I32))
    assert k(5) < k(None) and k(-1) < k(5)       # some (tag 0) < none (tag 1)
    k = sort_key(F64)
    assert k(-0.0) == k(0.0) and k(math.nan) == k(-math.nan) and k(math.inf) < k(math.nan)
    assert k(-math.inf) < k(-1e308)
    k = sort_key(IDENTITY)
    assert k(Identity(1)) < k(Identity(256))
    k = sort_key(ArrayType(STRING))
    assert k(['a']) < k(['a', '']) < k(['b'])
    k = sort_key(result_type(U8, U8))
    assert k(Ok(9)) < k(Err(0))


def test_encoder_cached_per_type():
    t = ProductType([('a', U8)])
    assert encoder(t) is encoder(t)
    assert decoder(t) is decoder(t)
    ts1, ts2 = Typespace([U8]), Typespace([STRING])
    r = ArrayType(RefType(0))
    assert encode(r, [1], ts1) == b'\x01\x00\x00\x00\x01'
    assert encode(r, ['x'], ts2) == b'\x01\x00\x00\x00\x01\x00\x00\x00x'


def test_distinct_int_ranges_all_types():
    for t in INTS:
        lo, hi = INT_RANGES[t.tag]
        for v in (lo, hi, 0 if lo < 0 else 1):
            assert decode(t, encode(t, v)) == v


# ---------------------------------------------------------------------------
# products bound to plain classes (generated attribute access / construction)
# ---------------------------------------------------------------------------

FIELD_NAMES = st.sampled_from(['a', 'b', 'id', 'name', 'class', 'from', 'value', 'x_1'])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELD_NAMES, types), min_size=0, max_size=5, unique_by=lambda p: p[0]).flatmap(
    lambda els: st.tuples(st.just(els), st.tuples(*[values(t) for _, t in els]))))
def test_bound_plain_class_roundtrip(case):
    els, vals = case
    names = [n for n, _ in els]
    cls = type('Rec', (), {'__slots__': tuple(names)})
    t = ProductType(els).bind(cls)
    obj = cls()
    for n, v in zip(names, vals, strict=True):
        setattr(obj, n, v)
    data = encode(t, obj)
    assert data == reference.encode(t, obj) == encode(ProductType(els), vals)
    back = decode(t, data)
    assert type(back) is cls
    assert [getattr(back, n) for n in names] == list(vals)
    for cut in range(len(data)):
        try:
            decode(t, data[:cut])
        except BsatnError:
            continue
        raise AssertionError('truncation accepted')


def test_bind_rejects_bad_names_and_late_binding():
    import pytest
    with pytest.raises(TypeError, match='unique identifier'):
        ProductType([('a', U8), ('a', U8)]).bind(type('X', (), {}))
    with pytest.raises(TypeError, match='unique identifier'):
        ProductType([(None, U8)]).bind(type('X', (), {}))
    t = ProductType([('a', U8)])
    encode(t, (1,))
    with pytest.raises(TypeError, match='already built'):
        t.bind(type('X', (), {}))
    with pytest.raises(TypeError, match='__sats_variants__'):
        SumType([('a', U8)]).bind(type('X', (), {}))
