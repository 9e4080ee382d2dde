"""Compiled BSATN value codecs.

``encoder(t, ts)`` returns ``enc(value) -> bytes`` and ``decoder(t, ts)``
returns ``dec(buf, off=0) -> (value, new_off)``.  Both are built once per
(type, typespace) and cached on the type object.

Design: every type gets a *raw* encoder/decoder without error handling,
which compose (products call their fields' raw codecs).  Products are
code-generated (``exec``) so that runs of fixed-size fields become one
precompiled ``struct.Struct`` call and strings/options are inlined.  The
*top-level* functions returned by ``encoder``/``decoder`` wrap the raw one in
``try`` (zero-cost on CPython 3.11 when nothing is raised).  On any failure
they re-run the slow interpretive codec in ``reference.py``, which either
accepts the input (it is more lenient: lists for tuples, ``Some`` anywhere,
dicts for products, ...) or raises a ``BsatnError`` naming the type, the
value path and the byte offset.  So the fast paths may be strict and raise
anything; correctness of the bytes is defined by ``reference.py``.
"""

import struct

from . import values as _V
from .types import (
    K_CONNECTION_ID,
    K_IDENTITY,
    K_NEVER,
    K_OPTION,
    K_RESULT,
    K_SCHEDULE_AT,
    K_TIME_DURATION,
    K_TIMESTAMP,
    K_UNIT,
    K_UUID,
    PY_KEYWORDS,
    TAG_ARRAY,
    TAG_BOOL,
    TAG_I128,
    TAG_I256,
    TAG_PRODUCT,
    TAG_REF,
    TAG_STRING,
    TAG_SUM,
    TAG_U8,
    TAG_U128,
    TAG_U256,
    BsatnError,
    attr_expr,
)
from .values import (
    Err,
    Ok,
    Some,
    SumValue,
    _mk_connection_id,
    _mk_err,
    _mk_identity,
    _mk_ok,
    _mk_schedule_at,
    _mk_some,
    _mk_sumvalue,
    _mk_time_duration,
    _mk_timestamp,
    _mk_uuid,
)

_new = object.__new__
_osa = object.__setattr__
_L = struct.Struct('<I')
_pack_len = _L.pack
_unpack_len = _L.unpack_from
_M64 = 0xFFFFFFFFFFFFFFFF
_BOOLS = (False, True)
_S_SCHED = struct.Struct('<Bq')
_TAGB = tuple(bytes((i,)) for i in range(256))


class _Slow(Exception):
    """Internal: the fast path declines; the reference codec takes over."""


_SLOW = _Slow()


class _Entry:
    __slots__ = ('enc', 'dec', 'enc_top', 'dec_top', 'key')

    def __init__(self):
        self.enc = self.dec = self.enc_top = self.dec_top = self.key = None


def _entry(t, ts):
    if t._has_refs:
        if ts is None:
            raise BsatnError(f'type {t!r} contains a Ref but no typespace was given')
        key = ts
    else:
        key = None
    c = t._cache
    if c is None:
        c = t._cache = {}
    e = c.get(key)
    if e is None:
        e = c[key] = _Entry()
    return e


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def encoder(t, typespace=None):
    """Compiled top-level encoder ``enc(value) -> bytes`` for type ``t``."""
    e = _entry(t, typespace)
    f = e.enc_top
    if f is None:
        f = e.enc_top = _build_enc_top(t, typespace)
    return f


def decoder(t, typespace=None):
    """Compiled top-level decoder ``dec(buf, off=0) -> (value, new_off)``.
    ``buf`` may be bytes, bytearray or a memoryview of bytes."""
    e = _entry(t, typespace)
    f = e.dec_top
    if f is None:
        f = e.dec_top = _build_dec_top(t, typespace)
    return f


def encode(t, value, typespace=None):
    """Encode ``value`` of type ``t`` to BSATN bytes."""
    return encoder(t, typespace)(value)


def exact_decoder(t, typespace=None):
    """``dec(data) -> value`` for type ``t`` that must consume all of ``data`` (else BsatnError 'trailing
    bytes'); build it once and reuse it where one type is decoded many times (rows, arguments)."""
    dec = decoder(t, typespace)

    def decode_exact(data):
        v, off = dec(data, 0)
        if off != len(data):
            raise BsatnError(f'trailing bytes: decoded {t!r} used {off} of {len(data)} bytes')
        return v

    return decode_exact


def decode(t, data, typespace=None):
    """Decode exactly one value of type ``t`` from ``data`` (all bytes must be
    consumed, else BsatnError 'trailing bytes')."""
    v, off = decoder(t, typespace)(data, 0)
    if off != len(data):
        raise BsatnError(f'trailing bytes: decoded {t!r} used {off} of {len(data)} bytes')
    return v


def decode_all(t, data, typespace=None):
    """Decode values of type ``t`` back to back until ``data`` is exhausted
    (row iterator output); returns a list."""
    dec = decoder(t, typespace)
    out = []
    off = 0
    n = len(data)
    while off < n:
        v, off = dec(data, off)
        out.append(v)
    return out


# ---------------------------------------------------------------------------
# Raw codec lookup (with Ref trampolines for recursive types)
# ---------------------------------------------------------------------------

def _raw_enc(t, ts):
    if t.tag == TAG_REF:
        return _ref_fn(t, ts, 'enc')
    e = _entry(t, ts)
    f = e.enc
    if f is None:
        f = e.enc = _compile_enc(t, ts)
    return f


def _raw_dec(t, ts):
    if t.tag == TAG_REF:
        return _ref_fn(t, ts, 'dec')
    e = _entry(t, ts)
    f = e.dec
    if f is None:
        f = e.dec = _compile_dec(t, ts)
    return f


def _ref_fn(t, ts, kind):
    if ts is None:
        raise BsatnError(f'type {t!r} is a Ref but no typespace was given')
    cache = ts._ref_cache
    k = (kind, t.index)
    f = cache.get(k)
    if f is not None:
        return f
    target = ts.resolve(t)
    cell = [None]
    if kind == 'enc':
        def tramp(v):
            return cell[0](v)
    else:
        def tramp(buf, off):
            return cell[0](buf, off)
    cache[k] = tramp
    try:
        real = _raw_enc(target, ts) if kind == 'enc' else _raw_dec(target, ts)
    except BaseException:
        del cache[k]
        raise
    cell[0] = real
    cache[k] = real
    return real


def _slow_encode(t, ts, v):
    from . import reference
    try:
        return reference.encode(t, v, ts)
    except BsatnError as e:  # it names the bad value; the fast path's failure that led here is noise
        e.__suppress_context__ = True
        raise


def _slow_decode(t, ts, buf, off):
    from . import reference
    return reference.decode_at(t, buf, off, ts)


def _build_enc_top(t, ts):
    if t.tag == TAG_PRODUCT and t.special is None:
        return _gen_product_enc(t, ts, True)
    raw = _raw_enc(t, ts)

    def enc(v):
        try:
            return raw(v)
        except Exception:
            return _slow_encode(t, ts, v)
    return enc


def _build_dec_top(t, ts):
    if t.tag == TAG_PRODUCT and t.special is None:
        return _gen_product_dec(t, ts, True)
    raw = _raw_dec(t, ts)

    def dec(buf, off=0):
        try:
            return raw(buf, off)
        except Exception:
            return _slow_decode(t, ts, buf, off)
    return dec


# ---------------------------------------------------------------------------
# Primitive codecs
# ---------------------------------------------------------------------------

def _fixed_dec(s):
    unpack = s.unpack_from
    size = s.size

    def dec(buf, off):
        return unpack(buf, off)[0], off + size
    return dec


def _enc_bool(v):
    if v is True:
        return b'\x01'
    if v is False:
        return b'\x00'
    raise _SLOW


def _dec_bool(buf, off):
    return _BOOLS[buf[off]], off + 1


def _enc_str(v):
    b = v.encode()
    return _pack_len(len(b)) + b


def _dec_str(buf, off):
    n = _unpack_len(buf, off)[0]
    off += 4
    end = off + n
    if end > len(buf):
        raise _SLOW
    return str(buf[off:end], 'utf-8'), end


_S_QQ = struct.Struct('<QQ')
_S_Qq = struct.Struct('<Qq')
_S_QQQQ = struct.Struct('<QQQQ')
_S_QQQq = struct.Struct('<QQQq')


def _enc_u128(v):
    return _S_QQ.pack(v & _M64, v >> 64)


def _enc_i128(v):
    return _S_Qq.pack(v & _M64, v >> 64)


def _enc_u256(v):
    return _S_QQQQ.pack(v & _M64, v >> 64 & _M64, v >> 128 & _M64, v >> 192)


def _enc_i256(v):
    return _S_QQQq.pack(v & _M64, v >> 64 & _M64, v >> 128 & _M64, v >> 192)


def _wide_dec(s):
    unpack = s.unpack_from
    if s.size == 16:
        def dec(buf, off):
            a, b = unpack(buf, off)
            return a | b << 64, off + 16
    else:
        def dec(buf, off):
            a, b, c, d = unpack(buf, off)
            return a | b << 64 | c << 128 | d << 192, off + 32
    return dec


def _int_encoder(fmt):
    # struct range-checks ints and rejects non-numbers; floats accept ints
    return struct.Struct('<' + fmt).pack


def _prim_enc(t):
    tag = t.tag
    if tag == TAG_STRING:
        return _enc_str
    if tag == TAG_BOOL:
        return _enc_bool
    if tag == TAG_U128:
        return _enc_u128
    if tag == TAG_I128:
        return _enc_i128
    if tag == TAG_U256:
        return _enc_u256
    if tag == TAG_I256:
        return _enc_i256
    return _int_encoder(t.fmt)


def _prim_dec(t):
    tag = t.tag
    if tag == TAG_STRING:
        return _dec_str
    if tag == TAG_BOOL:
        return _dec_bool
    if tag == TAG_U128:
        return _wide_dec(_S_QQ)
    if tag == TAG_I128:
        return _wide_dec(_S_Qq)
    if tag == TAG_U256:
        return _wide_dec(_S_QQQQ)
    if tag == TAG_I256:
        return _wide_dec(_S_QQQq)
    return _fixed_dec(struct.Struct('<' + t.fmt))


# ---------------------------------------------------------------------------
# Special types
# ---------------------------------------------------------------------------

def _enc_identity(v):
    return v._id_b


def _enc_connection_id(v):
    return v._cid_b


_S_32s = struct.Struct('<32s')
_S_16s = struct.Struct('<16s')
_S_q = struct.Struct('<q')
_pack_q = _S_q.pack
_unpack_q = _S_q.unpack_from


def _dec_identity(buf, off):
    return _mk_identity(_S_32s.unpack_from(buf, off)[0]), off + 32


def _dec_connection_id(buf, off):
    return _mk_connection_id(_S_16s.unpack_from(buf, off)[0]), off + 16


def _enc_timestamp(v):
    return _pack_q(v._tsm)


def _dec_timestamp(buf, off):
    return _mk_timestamp(_unpack_q(buf, off)[0]), off + 8


def _enc_time_duration(v):
    return _pack_q(v._tdm)


def _dec_time_duration(buf, off):
    return _mk_time_duration(_unpack_q(buf, off)[0]), off + 8


def _enc_uuid(v):
    u = v._u
    return _S_QQ.pack(u & _M64, u >> 64)


def _dec_uuid(buf, off):
    a, b = _S_QQ.unpack_from(buf, off)
    return _mk_uuid(a | b << 64), off + 16


def _enc_schedule_at(v):
    return _S_SCHED.pack(v._si, v._sm)


def _dec_schedule_at(buf, off):
    i, m = _S_SCHED.unpack_from(buf, off)
    return _mk_schedule_at(i, m), off + 9


def _enc_never(v):
    raise _SLOW


def _dec_never(buf, off):
    raise _SLOW


_SPECIAL_ENC = {
    K_IDENTITY: _enc_identity, K_CONNECTION_ID: _enc_connection_id, K_TIMESTAMP: _enc_timestamp,
    K_TIME_DURATION: _enc_time_duration, K_UUID: _enc_uuid, K_SCHEDULE_AT: _enc_schedule_at,
    K_NEVER: _enc_never,
}
_SPECIAL_DEC = {
    K_IDENTITY: _dec_identity, K_CONNECTION_ID: _dec_connection_id, K_TIMESTAMP: _dec_timestamp,
    K_TIME_DURATION: _dec_time_duration, K_UUID: _dec_uuid, K_SCHEDULE_AT: _dec_schedule_at,
    K_NEVER: _dec_never,
}


# ---------------------------------------------------------------------------
# Compilation dispatch
# ---------------------------------------------------------------------------

def _compile_enc(t, ts):
    tag = t.tag
    if t.is_primitive():
        return _prim_enc(t)
    if tag == TAG_ARRAY:
        return _array_enc(t, ts)
    sp = t.special
    if sp is not None:
        f = _SPECIAL_ENC.get(sp)
        if f is not None:
            return f
        if sp == K_UNIT:
            return _unit_enc(t)
        if sp == K_OPTION:
            return _option_enc(t, ts)
        if sp == K_RESULT:
            return _result_enc(t, ts)
    if tag == TAG_PRODUCT:
        return _gen_product_enc(t, ts, False)
    if tag == TAG_SUM:
        return _sum_enc(t, ts)
    raise TypeError(f'cannot build an encoder for {t!r}')


def _compile_dec(t, ts):
    tag = t.tag
    if t.is_primitive():
        return _prim_dec(t)
    if tag == TAG_ARRAY:
        return _array_dec(t, ts)
    sp = t.special
    if sp is not None:
        f = _SPECIAL_DEC.get(sp)
        if f is not None:
            return f
        if sp == K_UNIT:
            return _unit_dec(t)
        if sp == K_OPTION:
            return _option_dec(t, ts)
        if sp == K_RESULT:
            return _result_dec(t, ts)
    if tag == TAG_PRODUCT:
        return _gen_product_dec(t, ts, False)
    if tag == TAG_SUM:
        return _sum_dec(t, ts)
    raise TypeError(f'cannot build a decoder for {t!r}')


def _resolved(t, ts):
    if t.tag == TAG_REF:
        if ts is None:
            raise BsatnError(f'type {t!r} is a Ref but no typespace was given')
        return ts.resolve(t)
    return t


# ---------------------------------------------------------------------------
# Unit, options, results, sums
# ---------------------------------------------------------------------------

def _unit_enc(t):
    if t.cls is not None:
        def enc(v):
            return b''
    else:
        def enc(v):
            if v == () or v is None:
                return b''
            raise _SLOW
    return enc


def _unit_dec(t):
    cls = t.cls
    if cls is not None:
        def dec(buf, off):
            return _new(cls), off
    else:
        def dec(buf, off):
            return (), off
    return dec


def _option_enc(t, ts):
    inner = _raw_enc(t.elements[0][1], ts)

    def enc(v):
        if v is None:
            return b'\x01'
        if v.__class__ is Some:
            v = v.value
        return b'\x00' + inner(v)
    return enc


def _option_dec(t, ts):
    it = t.elements[0][1]
    inner = _raw_dec(it, ts)
    nested = _resolved(it, ts).special == K_OPTION
    if nested:
        def dec(buf, off):
            tag = buf[off]
            if tag == 0:
                v, off = inner(buf, off + 1)
                return _mk_some(v), off
            if tag == 1:
                return None, off + 1
            raise _SLOW
    else:
        def dec(buf, off):
            tag = buf[off]
            if tag == 0:
                return inner(buf, off + 1)
            if tag == 1:
                return None, off + 1
            raise _SLOW
    return dec


def _result_enc(t, ts):
    eok = _raw_enc(t.elements[0][1], ts)
    eerr = _raw_enc(t.elements[1][1], ts)

    def enc(v):
        c = v.__class__
        if c is Ok:
            return b'\x00' + eok(v.value)
        if c is Err:
            return b'\x01' + eerr(v.value)
        raise _SLOW
    return enc


def _result_dec(t, ts):
    dok = _raw_dec(t.elements[0][1], ts)
    derr = _raw_dec(t.elements[1][1], ts)

    def dec(buf, off):
        tag = buf[off]
        if tag == 0:
            v, off = dok(buf, off + 1)
            return _mk_ok(v), off
        if tag == 1:
            v, off = derr(buf, off + 1)
            return _mk_err(v), off
        raise _SLOW
    return dec


def _is_unit_payload(vt, ts):
    r = _resolved(vt, ts)
    return r.special == K_UNIT and r.cls is None


def variant_makers(cls):
    """For a class following the bound-sum protocol, return per tag either
    ``(True, singleton)`` or ``(False, make(value))``."""
    out = []
    for v in cls.__sats_variants__:
        if isinstance(v, type):
            mk = getattr(v, '_sats_make', None)
            if mk is None:
                def mk(value, _c=v):
                    o = _new(_c)
                    _osa(o, 'value', value)
                    return o
            out.append((False, mk))
        else:
            out.append((True, v))
    return out


def variant_classes(cls):
    """Map variant class -> tag index for the bound-sum protocol."""
    m = {}
    for i, v in enumerate(cls.__sats_variants__):
        m[v if isinstance(v, type) else type(v)] = i
    return m


def _sum_enc(t, ts):
    table = []
    for i, (_, vt) in enumerate(t.elements):
        if _is_unit_payload(vt, ts):
            table.append((_TAGB[i], None))
        else:
            table.append((_TAGB[i], _raw_enc(vt, ts)))
    cls = t.cls
    if cls is None:
        tab = tuple(table)

        def enc(v):
            if v.__class__ is not SumValue:
                raise _SLOW
            tb, e = tab[v.tag]
            if e is None:
                return tb
            return tb + e(v.value)
        return enc
    bycls = {c: table[i] for c, i in variant_classes(cls).items()}

    def enc_bound(v):
        tb, e = bycls[v.__class__]
        if e is None:
            return tb
        return tb + e(v.value)
    return enc_bound


def _sum_dec(t, ts):
    cls = t.cls
    n = len(t.elements)
    if cls is None:
        decs = []
        for _, vt in t.elements:
            decs.append(None if _is_unit_payload(vt, ts) else _raw_dec(vt, ts))
        decs = tuple(decs)
        units = tuple(_mk_sumvalue(i, None) for i in range(n))

        def dec(buf, off):
            tag = buf[off]
            d = decs[tag]
            if d is None:
                return units[tag], off + 1
            v, off = d(buf, off + 1)
            return _mk_sumvalue(tag, v), off
        return dec
    makers = variant_makers(cls)
    table = []
    for i, (_, vt) in enumerate(t.elements):
        is_single, obj = makers[i]
        if is_single:
            table.append((None, obj))
        else:
            table.append((_raw_dec(vt, ts), obj))
    table = tuple(table)

    def dec_bound(buf, off):
        d, obj = table[buf[off]]
        if d is None:
            return obj, off + 1
        v, off = d(buf, off + 1)
        return obj(v), off
    return dec_bound


# ---------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------

_FIXED_ARRAY_FMT = {6: 'b', 8: 'h', 9: 'H', 10: 'i', 11: 'I', 12: 'q', 13: 'Q', 18: 'f', 19: 'd'}


def _to_bytes(v):
    c = v.__class__
    if c is bytearray or c is memoryview:
        return bytes(v)
    if c is list or c is tuple:
        return bytes(v)
    raise _SLOW


def _array_enc(t, ts):
    et = _resolved(t.elem, ts)
    if et.tag == TAG_U8:
        def enc_bytes(v):
            if v.__class__ is not bytes:
                v = _to_bytes(v)
            return _pack_len(len(v)) + v
        return enc_bytes
    if et.tag == TAG_BOOL:
        def enc_bools(v):
            c = v.__class__
            if c is not list and c is not tuple:
                raise _SLOW
            for x in v:
                if x is not True and x is not False:
                    raise _SLOW
            return _pack_len(len(v)) + bytes(v)
        return enc_bools
    fc = _FIXED_ARRAY_FMT.get(et.tag) if et.is_primitive() else None
    if fc is not None:
        pack = struct.pack
        fmt = '<I%d' + fc

        def enc_fixed(v):
            c = v.__class__
            if c is not list and c is not tuple:
                raise _SLOW
            n = len(v)
            return pack(fmt % n, n, *v)
        return enc_fixed
    inner = _raw_enc(t.elem, ts)
    join = b''.join

    def enc(v):
        c = v.__class__
        if c is not list and c is not tuple:
            raise _SLOW
        return _pack_len(len(v)) + join(map(inner, v))
    return enc


def _array_dec(t, ts):
    et = _resolved(t.elem, ts)
    if et.tag == TAG_U8:
        def dec_bytes(buf, off):
            n = _unpack_len(buf, off)[0]
            off += 4
            end = off + n
            if end > len(buf):
                raise _SLOW
            return bytes(buf[off:end]), end
        return dec_bytes
    if et.tag == TAG_BOOL:
        def dec_bools(buf, off):
            n = _unpack_len(buf, off)[0]
            off += 4
            end = off + n
            if end > len(buf):
                raise _SLOW
            return [_BOOLS[b] for b in buf[off:end]], end
        return dec_bools
    fc = _FIXED_ARRAY_FMT.get(et.tag) if et.is_primitive() else None
    if fc is not None:
        unpack = struct.unpack_from
        fmt = '<%d' + fc
        size = et.size

        def dec_fixed(buf, off):
            n = _unpack_len(buf, off)[0]
            off += 4
            return list(unpack(fmt % n, buf, off)), off + n * size
        return dec_fixed
    if et.tag == TAG_STRING:
        def dec_strs(buf, off):
            n = _unpack_len(buf, off)[0]
            off += 4
            blen = len(buf)
            out = []
            app = out.append
            for _ in range(n):
                k = _unpack_len(buf, off)[0]
                off += 4
                end = off + k
                if end > blen:
                    raise _SLOW
                app(str(buf[off:end], 'utf-8'))
                off = end
            return out, off
        return dec_strs
    inner = _raw_dec(t.elem, ts)

    def dec(buf, off):
        n = _unpack_len(buf, off)[0]
        off += 4
        out = []
        app = out.append
        for _ in range(n):
            v, off = inner(buf, off)
            app(v)
        return out, off
    return dec


# ---------------------------------------------------------------------------
# Product code generation
# ---------------------------------------------------------------------------

# fixed-size inline kinds: (struct fmt, encode exprs (with {a}), pre-statement or None,
#                           decode expr over raw values {x0}.., number of raw values)
_FIXED_INLINE = {
    TAG_U128: ('QQ', ('{a} & _M64', '{a} >> 64'), None, '{t} = {x0} | {x1} << 64'),
    TAG_I128: ('Qq', ('{a} & _M64', '{a} >> 64'), None, '{t} = {x0} | {x1} << 64'),
    TAG_U256: ('QQQQ', ('{a} & _M64', '{a} >> 64 & _M64', '{a} >> 128 & _M64', '{a} >> 192'), None,
               '{t} = {x0} | {x1} << 64 | {x2} << 128 | {x3} << 192'),
    TAG_I256: ('QQQq', ('{a} & _M64', '{a} >> 64 & _M64', '{a} >> 128 & _M64', '{a} >> 192'), None,
               '{t} = {x0} | {x1} << 64 | {x2} << 128 | {x3} << 192'),
    TAG_BOOL: ('B', ('{a}',), 'if {a} is not True and {a} is not False: raise _SLOW', '{t} = _BOOLS[{x0}]'),
    K_IDENTITY: ('32s', ('{a}._id_b',), None, '{t} = _new(_Identity); _set_id_b({t}, {x0})'),
    K_CONNECTION_ID: ('16s', ('{a}._cid_b',), None, '{t} = _new(_ConnectionId); _set_cid_b({t}, {x0})'),
    K_TIMESTAMP: ('q', ('{a}._tsm',), None, '{t} = _new(_Timestamp); _set_tsm({t}, {x0})'),
    K_TIME_DURATION: ('q', ('{a}._tdm',), None, '{t} = _new(_TimeDuration); _set_tdm({t}, {x0})'),
    K_UUID: ('QQ', ('{a} & _M64', '{a} >> 64'), '{a} = {a}._u', '{t} = _new(_Uuid); _set_u({t}, {x0} | {x1} << 64)'),
    K_SCHEDULE_AT: ('Bq', ('{a}._si', '{a}._sm'), None, '{t} = _mk_schedule_at({x0}, {x1})'),
}

_GLOBALS = {
    '_SLOW': _SLOW, '_M64': _M64, '_BOOLS': _BOOLS, '_new': _new, '_osa': _osa,
    '_pack_len': _pack_len, '_unpack_len': _unpack_len, '_to_bytes': _to_bytes, '_str': str,
    '_bytes': bytes, '_len': len, '_tuple': tuple, '_mk_identity': _mk_identity,
    '_mk_connection_id': _mk_connection_id, '_mk_timestamp': _mk_timestamp,
    '_mk_time_duration': _mk_time_duration, '_mk_uuid': _mk_uuid, '_mk_schedule_at': _mk_schedule_at,
    '_mk_some': _mk_some, '_Exception': Exception, '_slow_encode': _slow_encode,
    '_slow_decode': _slow_decode, '_Identity': _V.Identity, '_set_id_b': _V._set_id_b,
    '_ConnectionId': _V.ConnectionId, '_set_cid_b': _V._set_cid_b, '_Timestamp': _V.Timestamp,
    '_set_tsm': _V._set_tsm, '_TimeDuration': _V.TimeDuration, '_set_tdm': _V._set_tdm, '_Uuid': _V.Uuid,
    '_set_u': _V._set_u,
}


def _field_kind(ft, ts):
    """Classify a product field for inlining."""
    rt = _resolved(ft, ts)
    if rt.is_primitive():
        if rt.tag == TAG_STRING:
            return ('str', None)
        fi = _FIXED_INLINE.get(rt.tag)
        if fi is not None:
            return ('fix', fi)
        return ('fix', (rt.fmt, ('{a}',), None, None))
    sp = rt.special
    if sp is not None:
        fi = _FIXED_INLINE.get(sp)
        if fi is not None:
            return ('fix', fi)
        if sp == K_OPTION:
            inner = rt.elements[0][1]
            ri = _resolved(inner, ts)
            if ri.special != K_OPTION:
                if ri.tag == TAG_STRING:
                    return ('optstr', None)
                return ('opt', inner)
    if rt.tag == TAG_ARRAY and _resolved(rt.elem, ts).tag == TAG_U8:
        return ('bytes', None)
    return ('call', ft)


def _attr_store(cls, n, v):
    """Statement storing local ``v`` into attribute ``n`` of ``o``."""
    if getattr(cls, '__setattr__', object.__setattr__) is object.__setattr__ and n not in PY_KEYWORDS:
        return f'o.{n} = {v}'
    return f'_osa(o, {n!r}, {v})'


_GLOBALS['__builtins__'] = __builtins__
_FunctionType = type(_entry)
_CodeType = type(_entry.__code__)


def _compile_src(src, ns, name):
    """Compile the generated function ``name``.  The values in ``ns`` become its closure variables and its
    globals are the one shared ``_GLOBALS``: a codec costs a function and a cell per value, not a copy of the
    globals dict (~1 KB each in a built module's snapshot)."""
    body = ''.join('    ' + ln + '\n' for ln in src.splitlines())
    code = compile(f"def _make({', '.join(ns)}):\n{body}    return {name}\n", f'<sats {name}>', 'exec')
    make = next(c for c in code.co_consts if isinstance(c, _CodeType))
    return _FunctionType(make, _GLOBALS)(**ns)


def _gen_product_enc(t, ts, top):
    ns = {}
    cls = t.cls
    fields = t.elements
    nf = len(fields)
    lines = []
    if cls is None:
        lines.append('if v.__class__ is not _tuple: raise _SLOW')
        if nf == 1:
            lines.append('a0, = v')
        else:
            lines.append('{} = v'.format(', '.join(f'a{i}' for i in range(nf))))
    else:
        for i, (n, _) in enumerate(fields):
            lines.append(f'a{i} = {attr_expr("v", n)}')
    parts = []
    run_fmt = []
    run_exprs = []

    def close_run():
        if run_fmt:
            k = len(ns)
            sname = f'S{k}'
            ns[sname] = struct.Struct('<' + ''.join(run_fmt))
            parts.append('{}.pack({})'.format(sname, ', '.join(run_exprs)))
            del run_fmt[:]
            del run_exprs[:]

    for i, (_, ft) in enumerate(fields):
        a = f'a{i}'
        kind, info = _field_kind(ft, ts)
        if kind == 'fix':
            fmt, exprs, pre, _ = info
            if pre is not None:
                lines.append(pre.format(a=a))
            run_fmt.append(fmt)
            run_exprs.extend(e.format(a=a) for e in exprs)
        elif kind == 'str' or kind == 'bytes':
            b = f'b{i}'
            if kind == 'str':
                lines.append(f'{b} = {a}.encode()')
            else:
                lines.append(f'{b} = {a} if {a}.__class__ is _bytes else _to_bytes({a})')
            run_fmt.append('I')
            run_exprs.append(f'_len({b})')
            close_run()
            parts.append(b)
        elif kind == 'optstr':
            close_run()
            b = f'b{i}'
            lines.append(f"if {a} is None: {b} = b'\\x01'")
            lines.append('else:')
            lines.append(f'    {b} = {a}.encode()')
            lines.append(f"    {b} = b'\\x00' + _pack_len(_len({b})) + {b}")
            parts.append(b)
        elif kind == 'opt':
            close_run()
            en = f'E{i}'
            ns[en] = _raw_enc(info, ts)
            parts.append(f"(b'\\x01' if {a} is None else b'\\x00' + {en}({a}))")
        else:
            close_run()
            en = f'E{i}'
            ns[en] = _raw_enc(info, ts)
            parts.append(f'{en}({a})')
    close_run()
    if not parts:
        ret = "return b''"
    elif len(parts) == 1:
        ret = 'return ' + parts[0]
    else:
        ret = "return b''.join(({},))".format(', '.join(parts))
    lines.append(ret)
    if top:
        ns['T'] = t
        ns['TS'] = ts
        body = ['    try:'] + ['        ' + ln for ln in lines] + [
            '    except _Exception:', '        return _slow_encode(T, TS, v)']
    else:
        body = ['    ' + ln for ln in lines]
    src = 'def enc(v):\n' + '\n'.join(body) + '\n'
    return _compile_src(src, ns, 'enc')


def _gen_product_dec(t, ts, top):
    ns = {}
    cls = t.cls
    fields = t.elements
    lines = []
    need_blen = False
    run_fmt = []
    run_vars = []      # raw var names
    run_convs = []     # (target var, expr) conversions after unpack

    def close_run():
        if run_fmt:
            k = len(ns)
            sname = f'S{k}'
            s = ns[sname] = struct.Struct('<' + ''.join(run_fmt))
            if len(run_vars) == 1:
                lines.append(f'{run_vars[0]}, = {sname}.unpack_from(buf, off)')
            else:
                lines.append('{} = {}.unpack_from(buf, off)'.format(', '.join(run_vars), sname))
            lines.append(f'off += {s.size}')
            lines.extend(run_convs)
            del run_fmt[:]
            del run_vars[:]
            del run_convs[:]

    def emit_str(i, var, kind, indent=''):
        # expects length in 'n%d' % i already; off points at payload
        lines.append(indent + f'end = off + n{i}')
        lines.append(indent + 'if end > blen: raise _SLOW')
        if kind == 'str':
            lines.append(indent + f"{var} = _str(buf[off:end], 'utf-8')")
        else:
            lines.append(indent + f'{var} = _bytes(buf[off:end])')
        lines.append(indent + 'off = end')

    all_plain_fixed = cls is None and len(fields) > 0
    for i, (_, ft) in enumerate(fields):
        v = f'v{i}'
        kind, info = _field_kind(ft, ts)
        if kind == 'fix':
            fmt, exprs, _, conv = info
            run_fmt.append(fmt)
            if conv is None:
                run_vars.append(v)
            else:
                all_plain_fixed = False
                raw = [f'x{i}_{j}' for j in range(len(exprs))]
                run_vars.extend(raw)
                run_convs.append(conv.format(t=v, **{f'x{j}': r for j, r in enumerate(raw)}))
        elif kind == 'str' or kind == 'bytes':
            all_plain_fixed = False
            need_blen = True
            run_fmt.append('I')
            run_vars.append(f'n{i}')
            close_run()
            emit_str(i, v, kind)
        elif kind == 'optstr':
            all_plain_fixed = False
            need_blen = True
            close_run()
            lines.append('tag = buf[off]')
            lines.append('if tag == 1:')
            lines.append(f'    {v} = None')
            lines.append('    off += 1')
            lines.append('elif tag == 0:')
            lines.append(f'    n{i}, = _unpack_len(buf, off + 1)')
            lines.append('    off += 5')
            emit_str(i, v, 'str', '    ')
            lines.append('else: raise _SLOW')
        elif kind == 'opt':
            all_plain_fixed = False
            close_run()
            dn = f'D{i}'
            ns[dn] = _raw_dec(info, ts)
            lines.append('tag = buf[off]')
            lines.append('if tag == 1:')
            lines.append(f'    {v} = None')
            lines.append('    off += 1')
            lines.append(f'elif tag == 0: {v}, off = {dn}(buf, off + 1)')
            lines.append('else: raise _SLOW')
        else:
            all_plain_fixed = False
            close_run()
            dn = f'D{i}'
            ns[dn] = _raw_dec(info, ts)
            lines.append(f'{v}, off = {dn}(buf, off)')
    if all_plain_fixed:
        # the unpacked tuple is the value
        sname = f'S{len(ns)}'
        s = ns[sname] = struct.Struct('<' + ''.join(run_fmt))
        lines = [f'return {sname}.unpack_from(buf, off), off + {s.size}']
    else:
        close_run()
        names = [f'v{i}' for i in range(len(fields))]
        if cls is None:
            if len(names) == 1:
                lines.append('return (v0,), off')
            else:
                lines.append('return ({}), off'.format(', '.join(names)))
        else:
            ns['C'] = cls
            lines.append('o = _new(C)')
            for (n, _), vn in zip(fields, names, strict=True):
                lines.append(_attr_store(cls, n, vn))
            lines.append('return o, off')
    if need_blen:
        lines.insert(0, 'blen = _len(buf)')
    if top:
        ns['T'] = t
        ns['TS'] = ts
        body = ['    try:'] + ['        ' + ln for ln in lines] + [
            '    except _Exception:', '        return _slow_decode(T, TS, buf, off0)']
        src = 'def dec(buf, off=0):\n    off0 = off\n' + '\n'.join(body) + '\n'
    else:
        src = 'def dec(buf, off):\n' + '\n'.join('    ' + ln for ln in lines) + '\n'
    return _compile_src(src, ns, 'dec')
