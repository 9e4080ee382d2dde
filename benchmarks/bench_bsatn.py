"""Micro-benchmark: compiled BSATN codec vs. a naive per-field codec, same run.

Row: {id: u64, name: str, age: u32, owner: Identity, nick: Option<str>},
as a plain tuple (unbound product) and as a @product class instance.

Baselines, both interpretive (walk the type for every value, no compiled closures):
* ``naive``: the minimal recursive codec below (one struct call per primitive, no checks);
* ``reference``: ``spacetime_core.sats.reference`` (the validating fallback the compiled codec uses on errors).

    python benchmarks/bench_bsatn.py [--seconds 0.3]
"""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spacetime_core.sats import (  # noqa: E402
    IDENTITY,
    STRING,
    U32,
    U64,
    Identity,
    Option,
    ProductType,
    decoder,
    encoder,
    option_type,
    product,
    reference,
    u32,
    u64,
)
from spacetime_core.sats.values import _mk_identity  # noqa: E402


@product
class Row:
    id: u64
    name: str
    age: u32
    owner: Identity
    nick: Option[str] = None


TUPLE_T = ProductType([('id', U64), ('name', STRING), ('age', U32), ('owner', IDENTITY),
                       ('nick', option_type(STRING))])
CLASS_T = Row.__sats_type__

# ---------------------------------------------------------------------------
# naive baseline: dispatch on the type for every field, one pack/unpack per primitive
# ---------------------------------------------------------------------------

_FMT = {U64: struct.Struct('<Q'), U32: struct.Struct('<I')}
_LEN = struct.Struct('<I')


def naive_encode(t, v):
    if t in _FMT:
        return _FMT[t].pack(v)
    if t is STRING:
        b = v.encode()
        return _LEN.pack(len(b)) + b
    if t.is_identity():
        return v.to_bytes()
    if t.is_option():
        return b'\x01' if v is None else b'\x00' + naive_encode(t.elements[0][1], v)
    if t.cls is not None:
        return b''.join(naive_encode(et, getattr(v, n)) for n, et in t.elements)
    return b''.join(naive_encode(et, x) for (_, et), x in zip(t.elements, v))


def naive_decode(t, buf, off):
    if t in _FMT:
        s = _FMT[t]
        return s.unpack_from(buf, off)[0], off + s.size
    if t is STRING:
        n = _LEN.unpack_from(buf, off)[0]
        return str(buf[off + 4:off + 4 + n], 'utf-8'), off + 4 + n
    if t.is_identity():
        return _mk_identity(bytes(buf[off:off + 32])), off + 32
    if t.is_option():
        if buf[off] == 1:
            return None, off + 1
        return naive_decode(t.elements[0][1], buf, off + 1)
    vals = []
    for _, et in t.elements:
        v, off = naive_decode(et, buf, off)
        vals.append(v)
    if t.cls is None:
        return tuple(vals), off
    o = object.__new__(t.cls)
    for (n, _), v in zip(t.elements, vals):
        setattr(o, n, v)
    return o, off


def rate(fn, args, seconds):
    loops = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for a in args:
            fn(a)
        loops += 1
        t = time.perf_counter()
        if t >= deadline:
            break
    return loops * len(args) / (t - t0)


def bench(label, t, vals, seconds):
    enc = encoder(t)
    dec = decoder(t)
    datas = [enc(v) for v in vals]
    assert datas == [naive_encode(t, v) for v in vals] == [reference.encode(t, v) for v in vals]
    assert [dec(d)[0] for d in datas] == [naive_decode(t, d, 0)[0] for d in datas]
    return [
        (f'{label} encode', rate(enc, vals, seconds), rate(lambda v: naive_encode(t, v), vals, seconds),
         rate(lambda v: reference.encode(t, v), vals, seconds)),
        (f'{label} decode', rate(dec, datas, seconds), rate(lambda d: naive_decode(t, d, 0), datas, seconds),
         rate(lambda d: reference.decode_at(t, d, 0), datas, seconds)),
    ]


def main():
    seconds = 0.3
    if '--seconds' in sys.argv:
        seconds = float(sys.argv[sys.argv.index('--seconds') + 1])
    owner = Identity.from_hex('c200' + 'ab' * 30)
    tuples = [(i, f'user{i}', 20 + i % 50, owner, None if i % 2 else f'nick{i}') for i in range(100)]
    objs = [Row(*v) for v in tuples]
    rows = bench('tuple row', TUPLE_T, tuples, seconds) + bench('@product row', CLASS_T, objs, seconds)
    print(f'{"operation":<20} {"compiled/s":>12} {"naive/s":>12} {"vs naive":>9} {"reference/s":>12} {"vs ref":>7}')
    for name, fast, naive, ref in rows:
        print(f'{name:<20} {fast:>12,.0f} {naive:>12,.0f} {fast / naive:>8.1f}x {ref:>12,.0f} {fast / ref:>6.1f}x')


if __name__ == '__main__':
    main()
