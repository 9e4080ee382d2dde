"""Reference (interpretive, uncompiled) BSATN codec.

This is the definition the compiled codecs in ``codec.py`` must agree
with.  It walks the type for every value, checks everything and reports
precise errors (type expected, value path, byte offset).  The compiled
codecs fall back to it whenever their fast path fails, so it is also the
lenient path: products accept tuples, lists, dicts or objects with the
element names as attributes; options accept ``Some(x)``; sums accept
``SumValue`` or bound variant instances.

It is imported lazily (only on errors) and doubles as the naive baseline
in ``benchmarks/bench_bsatn.py``.
"""

import struct

from .codec import variant_classes, variant_makers
from .types import (
    INT_RANGES,
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
    TAG_ARRAY,
    TAG_BOOL,
    TAG_F32,
    TAG_F64,
    TAG_PRODUCT,
    TAG_REF,
    TAG_STRING,
    TAG_SUM,
    TAG_U8,
    BsatnError,
)
from .values import (
    ConnectionId,
    Err,
    Identity,
    Ok,
    ScheduleAt,
    Some,
    SumValue,
    TimeDuration,
    Timestamp,
    Uuid,
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
_F32 = struct.Struct('<f')
_F64 = struct.Struct('<d')
_U32 = struct.Struct('<I')
_I64 = struct.Struct('<q')

_SPECIAL_CLASSES = {
    K_IDENTITY: Identity, K_CONNECTION_ID: ConnectionId, K_TIMESTAMP: Timestamp,
    K_TIME_DURATION: TimeDuration, K_UUID: Uuid,
}


def _path_str(path):
    return ''.join(path) if path else 'value'


def _root(t):
    if t.tag in (TAG_PRODUCT, TAG_SUM) and t.cls is not None:
        return t.cls.__name__
    r = repr(t)
    return r if len(r) <= 40 else r[:37] + '...'


def _tname(v):
    return type(v).__name__


def _short(v):
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + '...'


def _enc_err(path, expected, v, extra=''):
    return BsatnError(f'BSATN encode error at {_path_str(path)}: expected {expected}, '
                      f'got {_short(v)} ({_tname(v)}){extra}')


def _resolve(t, ts):
    if t.tag == TAG_REF:
        if ts is None:
            raise BsatnError(f'type {t!r} is a Ref but no typespace was given')
        return ts.resolve(t)
    return t


def _is_unit_payload(t, ts):
    r = _resolve(t, ts)
    return r.special == K_UNIT and r.cls is None


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

def encode(t, value, typespace=None):
    out = bytearray()
    _enc(t, typespace, value, out, [_root(t)])
    return bytes(out)


def _as_int(v, t, path):
    if isinstance(v, int):
        return int(v)
    idx = getattr(type(v), '__index__', None)
    if idx is not None and not isinstance(v, float):
        return idx(v)
    lo, hi = INT_RANGES[t.tag]
    raise _enc_err(path, f'{t} (int in {lo}..{hi})', v)


def _enc_prim(t, v, out, path):
    tag = t.tag
    if tag == TAG_STRING:
        if not isinstance(v, str):
            raise _enc_err(path, 'String (str)', v)
        try:
            b = v.encode('utf-8')
        except UnicodeEncodeError as e:
            raise _enc_err(path, 'String encodable as UTF-8', v, f': {e}') from None
        out += _U32.pack(len(b))
        out += b
    elif tag == TAG_BOOL:
        if v is True:
            out.append(1)
        elif v is False:
            out.append(0)
        else:
            raise _enc_err(path, 'Bool (True or False)', v)
    elif tag == TAG_F32 or tag == TAG_F64:
        if isinstance(v, (float, int)) and not isinstance(v, bool):
            fv = float(v)
        else:
            raise _enc_err(path, f'{t} (float)', v)
        if tag == TAG_F32:
            try:
                out += _F32.pack(fv)
            except (OverflowError, struct.error):
                raise _enc_err(path, 'F32 (float within the binary32 range)', v) from None
        else:
            out += _F64.pack(fv)
    else:
        n = _as_int(v, t, path)
        lo, hi = INT_RANGES[tag]
        if not lo <= n <= hi:
            raise _enc_err(path, f'{t} (int in {lo}..{hi})', v, ': out of range')
        out += n.to_bytes(t.size, 'little', signed=lo < 0)


def _enc(t, ts, v, out, path):
    tag = t.tag
    if tag == TAG_REF:
        t = _resolve(t, ts)
        tag = t.tag
    if t.is_primitive():
        _enc_prim(t, v, out, path)
        return
    if tag == TAG_ARRAY:
        _enc_array(t, ts, v, out, path)
        return
    sp = t.special
    if sp is not None:
        cls = _SPECIAL_CLASSES.get(sp)
        if cls is not None:
            if v.__class__ is not cls:
                raise _enc_err(path, cls.__name__, v)
            if sp == K_IDENTITY:
                out += v._id_b
            elif sp == K_CONNECTION_ID:
                out += v._cid_b
            elif sp == K_TIMESTAMP:
                out += _I64.pack(v._tsm)
            elif sp == K_TIME_DURATION:
                out += _I64.pack(v._tdm)
            else:
                out += v._u.to_bytes(16, 'little')
            return
        if sp == K_UNIT:
            if v is None or v == () or v == [] or (t.cls is not None and isinstance(v, t.cls)):
                return
            raise _enc_err(path, '() (unit)', v)
        if sp == K_NEVER:
            raise _enc_err(path, 'nothing (the never type has no values)', v)
        if sp == K_OPTION:
            if v is None:
                out.append(1)
                return
            if v.__class__ is Some:
                v = v.value
            out.append(0)
            _enc(t.elements[0][1], ts, v, out, path + ['.some'])
            return
        if sp == K_RESULT:
            if v.__class__ is Ok or (v.__class__ is SumValue and v.tag == 0):
                out.append(0)
                _enc(t.elements[0][1], ts, v.value, out, path + ['.ok'])
            elif v.__class__ is Err or (v.__class__ is SumValue and v.tag == 1):
                out.append(1)
                _enc(t.elements[1][1], ts, v.value, out, path + ['.err'])
            else:
                raise _enc_err(path, f'Ok(...) or Err(...) for {t!r}', v)
            return
        if sp == K_SCHEDULE_AT:
            if v.__class__ is ScheduleAt:
                out.append(v._si)
                out += _I64.pack(v._sm)
            elif v.__class__ is TimeDuration:
                out.append(0)
                out += _I64.pack(v._tdm)
            elif v.__class__ is Timestamp:
                out.append(1)
                out += _I64.pack(v._tsm)
            else:
                raise _enc_err(path, 'ScheduleAt', v)
            return
    if tag == TAG_PRODUCT:
        _enc_product(t, ts, v, out, path)
    elif tag == TAG_SUM:
        _enc_sum(t, ts, v, out, path)
    else:  # pragma: no cover
        raise BsatnError(f'unknown type {t!r}')


def _enc_array(t, ts, v, out, path):
    et = _resolve(t.elem, ts)
    if et.tag == TAG_U8:
        if isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
            out += _U32.pack(len(b))
            out += b
            return
        if not isinstance(v, (list, tuple)):
            raise _enc_err(path, 'bytes for Array<U8>', v)
    elif not isinstance(v, (list, tuple)):
        raise _enc_err(path, f'list or tuple for {t!r}', v)
    if len(v) > 0xFFFFFFFF:
        raise _enc_err(path, 'at most 2**32-1 elements', v)
    out += _U32.pack(len(v))
    for i, x in enumerate(v):
        _enc(t.elem, ts, x, out, path + [f'[{i}]'])


def _product_label(t):
    return t.cls.__name__ if t.cls is not None else repr(t)


def _enc_product(t, ts, v, out, path):
    els = t.elements
    if isinstance(v, (tuple, list)):
        if len(v) != len(els):
            raise _enc_err(path, f'{len(els)}-element tuple for {_product_label(t)}', v)
        vals = v
    elif isinstance(v, dict):
        vals = []
        for n, _ in els:
            if n not in v:
                raise _enc_err(path, f'dict with key {n!r} for {_product_label(t)}', v)
            vals.append(v[n])
    else:
        if any(n is None for n, _ in els):
            raise _enc_err(path, f'tuple for {_product_label(t)}', v)
        vals = []
        for n, _ in els:
            try:
                vals.append(getattr(v, n))
            except AttributeError:
                raise _enc_err(path, f'{_product_label(t)} (object with attribute {n!r})', v) from None
    for i, ((n, et), x) in enumerate(zip(els, vals, strict=False)):
        _enc(et, ts, x, out, path + [f'.{n}' if n is not None else f'.{i}'])


def _enc_sum(t, ts, v, out, path):
    variants = t.elements
    tag = None
    if t.cls is not None:
        tag = variant_classes(t.cls).get(v.__class__)
    if tag is None:
        if v.__class__ is SumValue:
            tag = v.tag
        elif isinstance(getattr(type(v), '_tag_index', None), int):
            tag = type(v)._tag_index
        else:
            raise _enc_err(path, f'a value of {_product_label(t)} (SumValue or variant instance)', v)
    if not 0 <= tag < len(variants):
        raise _enc_err(path, f'variant tag < {len(variants)} for {_product_label(t)}', v)
    name, vt = variants[tag]
    out.append(tag)
    if _is_unit_payload(vt, ts):
        return
    _enc(vt, ts, getattr(v, 'value', None), out, path + [f'.{name if name is not None else tag}'])


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

def decode(t, data, typespace=None):
    v, off = decode_at(t, data, 0, typespace)
    if off != len(data):
        raise BsatnError(f'trailing bytes: decoded {t!r} used {off} of {len(data)} bytes')
    return v


def decode_at(t, buf, off=0, typespace=None):
    """Decode one value at ``off``; returns (value, new_offset)."""
    return _Dec(buf, typespace).dec(t, off, [_root(t)])


class _Dec:
    __slots__ = ('buf', 'ts', 'n')

    def __init__(self, buf, ts):
        self.buf = buf
        self.ts = ts
        self.n = len(buf)

    def need(self, off, k, what, path):
        if off + k > self.n:
            left = max(self.n - off, 0)
            raise BsatnError(f'BSATN decode error at offset {off} ({_path_str(path)}): unexpected end of input '
                             f'reading {what}: need {k} bytes, {left} left')

    def fail(self, off, path, msg):
        return BsatnError(f'BSATN decode error at offset {off} ({_path_str(path)}): {msg}')

    def u32(self, off, what, path):
        self.need(off, 4, what, path)
        return _U32.unpack_from(self.buf, off)[0]

    def tag(self, off, what, path):
        self.need(off, 1, what, path)
        return self.buf[off]

    def dec(self, t, off, path):
        buf = self.buf
        ts = self.ts
        if t.tag == TAG_REF:
            t = _resolve(t, ts)
        tag = t.tag
        if t.is_primitive():
            if tag == TAG_STRING:
                n = self.u32(off, 'String length (u32)', path)
                off += 4
                self.need(off, n, 'String bytes', path)
                try:
                    return str(bytes(buf[off:off + n]), 'utf-8'), off + n
                except UnicodeDecodeError as e:
                    raise self.fail(off, path, f'invalid UTF-8 in String: {e}') from None
            if tag == TAG_BOOL:
                b = self.tag(off, 'Bool', path)
                if b > 1:
                    raise self.fail(off, path, f'invalid Bool byte 0x{b:02x} (expected 0x00 or 0x01)')
                return b == 1, off + 1
            self.need(off, t.size, f'{t} ({t.size} bytes)', path)
            if tag == TAG_F32:
                return _F32.unpack_from(buf, off)[0], off + 4
            if tag == TAG_F64:
                return _F64.unpack_from(buf, off)[0], off + 8
            lo, _ = INT_RANGES[tag]
            return int.from_bytes(bytes(buf[off:off + t.size]), 'little', signed=lo < 0), off + t.size
        if tag == TAG_ARRAY:
            return self.dec_array(t, off, path)
        sp = t.special
        if sp is not None:
            if sp == K_IDENTITY:
                self.need(off, 32, 'Identity (32 bytes)', path)
                return _mk_identity(bytes(buf[off:off + 32])), off + 32
            if sp == K_CONNECTION_ID:
                self.need(off, 16, 'ConnectionId (16 bytes)', path)
                return _mk_connection_id(bytes(buf[off:off + 16])), off + 16
            if sp == K_TIMESTAMP:
                self.need(off, 8, 'Timestamp (8 bytes)', path)
                return _mk_timestamp(_I64.unpack_from(buf, off)[0]), off + 8
            if sp == K_TIME_DURATION:
                self.need(off, 8, 'TimeDuration (8 bytes)', path)
                return _mk_time_duration(_I64.unpack_from(buf, off)[0]), off + 8
            if sp == K_UUID:
                self.need(off, 16, 'Uuid (16 bytes)', path)
                return _mk_uuid(int.from_bytes(bytes(buf[off:off + 16]), 'little')), off + 16
            if sp == K_UNIT:
                return (_new(t.cls) if t.cls is not None else ()), off
            if sp == K_NEVER:
                raise self.fail(off, path, 'the never type (empty sum) has no values')
            if sp == K_OPTION:
                g = self.tag(off, 'Option tag', path)
                if g == 1:
                    return None, off + 1
                if g != 0:
                    raise self.fail(off, path, f'invalid sum tag {g} for {t!r} (2 variants)')
                it = t.elements[0][1]
                v, off = self.dec(it, off + 1, path + ['.some'])
                if _resolve(it, ts).special == K_OPTION:
                    v = _mk_some(v)
                return v, off
            if sp == K_RESULT:
                g = self.tag(off, 'Result tag', path)
                if g > 1:
                    raise self.fail(off, path, f'invalid sum tag {g} for {t!r} (2 variants)')
                v, off = self.dec(t.elements[g][1], off + 1, path + ['.err' if g else '.ok'])
                return (_mk_err(v) if g else _mk_ok(v)), off
            if sp == K_SCHEDULE_AT:
                g = self.tag(off, 'ScheduleAt tag', path)
                if g > 1:
                    raise self.fail(off, path, f'invalid sum tag {g} for ScheduleAt (2 variants)')
                self.need(off + 1, 8, 'ScheduleAt payload (8 bytes)', path)
                return _mk_schedule_at(g, _I64.unpack_from(buf, off + 1)[0]), off + 9
        if tag == TAG_PRODUCT:
            vals = []
            for i, (n, et) in enumerate(t.elements):
                v, off = self.dec(et, off, path + [f'.{n}' if n is not None else f'.{i}'])
                vals.append(v)
            cls = t.cls
            if cls is None:
                return tuple(vals), off
            o = _new(cls)
            for (n, _), v in zip(t.elements, vals, strict=False):
                _osa(o, n, v)
            return o, off
        if tag == TAG_SUM:
            g = self.tag(off, 'sum tag', path)
            variants = t.elements
            if g >= len(variants):
                raise self.fail(off, path, f'invalid sum tag {g} for {_product_label(t)} ({len(variants)} variants)')
            name, vt = variants[g]
            sub = path + [f'.{name if name is not None else g}']
            if t.cls is None:
                if _is_unit_payload(vt, ts):
                    return _mk_sumvalue(g, None), off + 1
                v, off = self.dec(vt, off + 1, sub)
                return _mk_sumvalue(g, v), off
            is_single, obj = variant_makers(t.cls)[g]
            if is_single:
                return obj, off + 1
            v, off = self.dec(vt, off + 1, sub)
            return obj(v), off
        raise BsatnError(f'unknown type {t!r}')  # pragma: no cover

    def dec_array(self, t, off, path):
        n = self.u32(off, 'array length (u32)', path)
        off += 4
        et = _resolve(t.elem, self.ts)
        if et.tag == TAG_U8:
            self.need(off, n, 'Array<U8> bytes', path)
            return bytes(self.buf[off:off + n]), off + n
        out = []
        for i in range(n):
            v, off = self.dec(t.elem, off, path + [f'[{i}]'])
            out.append(v)
        return out, off
